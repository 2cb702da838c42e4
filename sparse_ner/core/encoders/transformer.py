"""Any Hugging Face encoder from a local folder, pooled to one vector per pre-split word.

Words are tokenized with ``is_split_into_words=True`` and aligned with the fast tokenizer's
``word_ids()``; a word that yields no subword (odd whitespace, control characters) gets the
tokenizer's unknown token, so no word is ever dropped. Each word is pooled as its first subword
(``pooling="first"``) or the mean of its subwords (``"mean"``).

Texts longer than the encoder's limit are cut into overlapping windows of ``window`` subwords
(special tokens excluded) sharing ``stride`` subwords with the next window (the Hugging Face
meaning of "stride"); the last window is aligned to the end of the text. Every word takes its
vector from the window, among those holding its first subword, where it lies farthest from an
artificial window edge (the true start and end of the text are not edges); ties go to the earlier
window. Nothing is truncated, except that a single word longer than a window keeps only the
subwords inside its window for mean pooling.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Iterable, Literal, NamedTuple, Sequence

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

from .base import Encoder, by_length, pad_ids
from .small import NUM_SHAPES, word_shape

# Models whose position ids start after the padding index, so ``max_position_embeddings``
# counts ``pad_token_id + 1`` positions that no token can use.
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "xlm-roberta-xl"}
_HUGE = 10**8  # tokenizers without a limit report ``model_max_length`` around 1e30


DEFAULT_STRIDE = 128  # subwords of overlap between windows, at most half a window


def subword_limit(model_config: Any, tokenizer: Any) -> int:
    """The most tokens (special tokens included) one forward pass of the encoder accepts."""
    limit = getattr(model_config, "max_position_embeddings", None) or _HUGE
    if getattr(model_config, "model_type", "") in _OFFSET_POSITIONS:
        limit -= (getattr(model_config, "pad_token_id", None) or 0) + 1
    tok_max = getattr(tokenizer, "model_max_length", None)
    if tok_max is not None and tok_max < _HUGE:
        limit = min(limit, tok_max)
    if limit >= _HUGE:
        raise ValueError("cannot tell the encoder's length limit; pass window= explicitly")
    return limit


def window_starts(n: int, window: int, stride: int) -> list[int]:
    """Starts of windows of ``window`` subwords over ``n`` subwords, overlapping by ``stride``."""
    step = window - stride
    starts = [0]
    while starts[-1] + window < n:
        starts.append(min(starts[-1] + step, n - window))
    return starts


def assign_windows(
    spans: list[tuple[int, int]], n: int, window: int, stride: int
) -> tuple[list[int], list[int]]:
    """For words at subword spans ``[a, b)``, pick each word's window; see the module docstring.

    Returns the window starts and, per word, the index of its window.
    """
    starts = window_starts(n, window, stride)
    chosen: list[int] = []
    k = 0  # windows are sorted, so the first window holding a word only moves forward
    for a, b in spans:
        while starts[k] + window <= a:
            k += 1
        best, best_score = k, -math.inf
        j = k
        while j < len(starts) and starts[j] <= a:
            s = starts[j]
            left = a - s if s > 0 else math.inf
            right = s + window - b if s + window < n else math.inf
            score = min(left, right)
            if score > best_score:
                best, best_score = j, score
            j += 1
        chosen.append(best)
    return starts, chosen


class Coverage(NamedTuple):
    """How much of a data set a tokenizer can represent (:func:`unknown_words`): ``unknown`` of the
    ``words`` looked at contain its unknown token, e.g. ``examples``."""

    unknown: int
    words: int
    examples: list[str]

    @property
    def share(self) -> float:
        """The share of words with an unknown token (0 for no words)."""
        return self.unknown / self.words if self.words else 0.0


def unknown_words(tokenizer: Any, texts: Iterable[Sequence[str]], limit: int = 1000) -> Coverage:
    """Which words of the first ``limit`` texts (word lists) ``tokenizer`` turns into its unknown
    token (a word counts once if any of its subwords is unknown). An English model's tokenizer
    knows every word of CoNLL-2003, WikiGold and WNUT-17 but half the characters of Chinese
    resumes (BENCHMARKS.md), and a word it cannot tell from another gives the tagger nothing."""
    unk = tokenizer.unk_token_id
    unknown, total, examples = 0, 0, []
    for words in itertools.islice(texts, limit):
        words = list(words)
        if not words:
            continue
        total += len(words)
        if unk is None:
            continue
        enc = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
        bad = {w for tok, w in zip(enc["input_ids"], enc.word_ids()) if w is not None and tok == unk}
        unknown += len(bad)
        for w in sorted(bad):
            if len(examples) < 5 and words[w] not in examples:
                examples.append(words[w])
    return Coverage(unknown, total, examples)


class TransformerEncoder(Encoder):
    """A local Hugging Face encoder (``AutoModel`` + fast ``AutoTokenizer``) pooled per word.

    ``featurize`` returns ``subword_ids`` (the text's subwords, no special tokens) and
    ``word_spans`` (``[start, end)`` of each word in them). ``collate`` returns the windows of the
    batch as rows, ``input_ids (W, L)`` and ``attention_mask (W, L)`` (``W`` >= ``B`` windows),
    plus ``subword_index (B, T, S)`` (flat positions into ``W * L``; ``S`` = 1 for first-subword
    pooling), ``subword_mask (B, T, S)`` and ``word_mask (B, T)``.

    ``window`` defaults to the encoder's limit minus the special tokens; ``stride`` is the overlap
    between consecutive windows (default ``min(128, window // 2)``, so a model with few positions
    works without it); the windows of a batch run in groups of similar length, each trimmed
    to its longest (:func:`~sparse_ner.core.encoders.base.length_groups`), and ``window_batch_size`` caps how many windows one forward
    pass runs (``None``: no cap); ``freeze`` turns off gradients for the transformer; ``train_layers``
    fine-tunes only its top N layers (embeddings and lower layers frozen, so backward stops early:
    what makes online updates of a transformer cheap). ``shape_dim`` > 0 appends a learned embedding
    of each word's capitalization shape (the small encoder's ``word_shape``), which an uncased
    model such as MiniLM-L6 cannot see; ``collate`` then also returns ``shape_ids (B, T)``.
    """

    kind = "transformer"

    def __init__(
        self,
        path: str | Path,
        *,
        pooling: Literal["first", "mean"] = "first",
        window: int | None = None,
        stride: int | None = None,
        window_batch_size: int | None = None,
        freeze: bool = False,
        train_layers: int | None = None,
        shape_dim: int = 0,
    ):
        super().__init__()
        if pooling not in ("first", "mean"):
            raise ValueError(f"pooling must be 'first' or 'mean', got {pooling!r}")
        self.path = str(path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        if not self.tokenizer.is_fast:
            raise ValueError(f"{self.path}: a fast tokenizer is required to align words")
        # float32 weights whatever dtype the checkpoint stores (transformers 5 would keep a float16 or
        # bfloat16 checkpoint in it, and the optimizer would then step in half precision); autocast
        # gives bf16 compute where it is asked for
        self.model = AutoModel.from_pretrained(self.path, local_files_only=True).float()
        self.prefix, self.suffix = self._special_tokens()
        max_window = subword_limit(self.model.config, self.tokenizer) - len(self.prefix) - len(
            self.suffix
        )
        window = max_window if window is None else window
        if not 1 <= window <= max_window:
            raise ValueError(f"window must be in [1, {max_window}] subwords, got {window}")
        stride = min(DEFAULT_STRIDE, window // 2) if stride is None else stride
        if not 0 <= stride < window:
            raise ValueError(f"stride (overlap) must be in [0, window={window}), got {stride}")
        self.pooling, self.window, self.stride = pooling, window, stride
        self.window_batch_size, self.freeze = window_batch_size, freeze
        unk = self.tokenizer.unk_token_id
        self.unk_id = unk if unk is not None else self.tokenizer.pad_token_id or 0
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.shape_dim = shape_dim
        self.shape_embed = nn.Embedding(NUM_SHAPES, shape_dim, padding_idx=0) if shape_dim > 0 else None
        self.output_dim = self.model.config.hidden_size + shape_dim
        self.train_layers: int | None = None
        self.set_trainable(0 if freeze else train_layers)

    def layers(self) -> nn.ModuleList:
        """The transformer's stack of layers (the ``ModuleList`` with ``num_hidden_layers`` items)."""
        n = getattr(self.model.config, "num_hidden_layers", None)
        for module in self.model.modules():
            if isinstance(module, nn.ModuleList) and len(module) == n:
                return module
        raise ValueError(f"{self.path}: cannot find a list of {n} layers in {type(self.model).__name__}")

    def set_trainable(self, train_layers: int | None) -> None:
        """Fine-tune all of the transformer (``None``), nothing (0) or only its top ``train_layers``."""
        self._top: list[nn.Module] = []  # the layers that train when only the top ones do
        if train_layers is None:
            self.model.requires_grad_(True)
        else:
            layers = self.layers()
            if not 0 <= train_layers <= len(layers):
                raise ValueError(f"train_layers must be in [0, {len(layers)}], got {train_layers}")
            self.model.requires_grad_(False)
            self._top = list(layers)[len(layers) - train_layers :]
            for layer in self._top:
                layer.requires_grad_(True)
        self.train_layers = train_layers
        self.freeze = train_layers == 0
        self.train(self.training)

    def train(self, mode: bool = True) -> "TransformerEncoder":
        """Frozen parts always run as in evaluation (no dropout): they are fixed feature extractors."""
        super().train(mode)
        if self.train_layers is not None:
            self.model.eval()
            for layer in self._top if mode else []:
                layer.train(True)
        return self

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """Ids the tokenizer puts before and after a single text (e.g. ``[CLS]`` / ``[SEP]``)."""
        enc = self.tokenizer(["a"], is_split_into_words=True, add_special_tokens=True)
        ids, wids = enc["input_ids"], enc.word_ids()
        first = wids.index(0)
        last = len(wids) - 1 - wids[::-1].index(0)
        return ids[:first], ids[last + 1 :]

    def coverage(self, texts: Iterable[Sequence[str]], limit: int = 1000) -> Coverage:
        """:func:`unknown_words` of this encoder's tokenizer over the first ``limit`` texts."""
        return unknown_words(self.tokenizer, texts, limit)

    # -- featurize / collate (CPU, workers) ---------------------------------------------------

    def featurize(self, words: list[str]) -> dict[str, Any]:
        per_word: list[list[int]] = [[] for _ in words]
        if words:
            enc = self.tokenizer(words, is_split_into_words=True, add_special_tokens=False)
            for tok, w in zip(enc["input_ids"], enc.word_ids()):
                if w is not None:
                    per_word[w].append(tok)
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        for toks in per_word:
            toks = toks or [self.unk_id]  # a word with no subword still gets a vector
            spans.append((len(ids), len(ids) + len(toks)))
            ids.extend(toks)
        out: dict[str, Any] = {"subword_ids": ids, "word_spans": spans}
        if self.shape_embed is not None:
            out["shape_ids"] = [word_shape(w) for w in words]
        return out

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows: list[list[int]] = []
        index: list[list[list[int]]] = []  # per example, per word: flat positions (row, column)
        P = len(self.prefix)
        L = len(self.prefix) + min(
            self.window, max([len(f["subword_ids"]) for f in features] + [0])
        ) + len(self.suffix)
        for f in features:
            ids, spans = f["subword_ids"], f["word_spans"]
            starts, chosen = assign_windows(spans, len(ids), self.window, self.stride)
            row0 = len(rows)
            for s in starts:
                rows.append(self.prefix + ids[s : s + self.window] + self.suffix)
            words = []
            for (a, b), k in zip(spans, chosen):
                s = starts[k]
                end = b if self.pooling == "mean" else a + 1
                end = min(end, s + self.window)
                words.append([(row0 + k) * L + P + (i - s) for i in range(a, end)])
            index.append(words)
        input_ids, attention_mask = pad_ids(rows, pad=self.pad_id)  # (W, L)
        assert input_ids.shape[1] == L, (input_ids.shape, L)
        B, T = len(features), max([len(x) for x in index] + [1])
        S = max([len(w) for x in index for w in x] + [1])
        subword_index = torch.zeros(B, T, S, dtype=torch.long)
        subword_mask = torch.zeros(B, T, S, dtype=torch.bool)
        word_mask = torch.zeros(B, T, dtype=torch.bool)
        for b, words in enumerate(index):
            for t, pos in enumerate(words):
                subword_index[b, t, : len(pos)] = torch.as_tensor(pos)
                subword_mask[b, t, : len(pos)] = True
                word_mask[b, t] = True
        out = {
            "input_ids": input_ids,  # (W, L)
            "attention_mask": attention_mask,  # (W, L)
            "subword_index": subword_index,  # (B, T, S)
            "subword_mask": subword_mask,  # (B, T, S)
            "word_mask": word_mask,  # (B, T)
        }
        if self.shape_embed is not None:
            shape_ids, _ = pad_ids([f["shape_ids"] for f in features])  # (B, T')
            out["shape_ids"] = torch.zeros(B, T, dtype=torch.long)  # (B, T)
            out["shape_ids"][:, : shape_ids.shape[1]] = shape_ids
        return out

    # -- network ------------------------------------------------------------------------------

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        W, L = input_ids.shape
        lengths = attention_mask.sum(1).tolist()  # subwords of each window, padding at the end

        def run(rows: torch.Tensor, n: int) -> torch.Tensor:  # (w, n, H); padded positions are never read
            return self.model(input_ids=input_ids[rows, :n], attention_mask=attention_mask[rows, :n]).last_hidden_state

        hidden = by_length(run, lengths, L, self.window_batch_size, input_ids.device)  # (W, L, H), batch order
        flat = hidden.reshape(W * L, -1)  # (W * L, H)
        index, mask = batch["subword_index"], batch["subword_mask"]
        B, T, S = index.shape
        vecs = flat[index.reshape(-1)].reshape(B, T, S, -1)  # (B, T, S, H)
        m = mask.unsqueeze(-1).to(vecs.dtype)  # (B, T, S, 1)
        pooled = (vecs * m).sum(2) / m.sum(2).clamp(min=1)  # (B, T, H)
        if self.shape_embed is not None:
            pooled = torch.cat([pooled, self.shape_embed(batch["shape_ids"])], -1)  # (B, T, H + Ds)
        return pooled

    # -- export -------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "path": self.path,
            "pooling": self.pooling,
            "window": self.window,
            "stride": self.stride,
            "window_batch_size": self.window_batch_size,
            "freeze": self.freeze,
            "train_layers": self.train_layers,
            "shape_dim": self.shape_dim,
        }

    def save(self, folder: Path) -> None:
        """Write the tokenizer, model config and (current) weights with ``save_pretrained``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> "TransformerEncoder":
        """Rebuild from a folder written by :meth:`save` (the ``path`` in ``config`` is ignored)."""
        options = {k: v for k, v in config.items() if k not in ("type", "path")}
        return cls(folder, **options)
