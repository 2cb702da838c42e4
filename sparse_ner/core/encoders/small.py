"""A small encoder trained from scratch: word + character + shape features, then a BiLSTM or CNN.

Features of each word:

- a word embedding over a lowercased (digits mapped to ``0``) vocabulary of training words seen at
  least ``min_count`` times, with ``<unk>`` for the rest; during training a fraction
  ``word_dropout`` of words is replaced by ``<unk>`` so the unknown vector is learned;
- a character CNN (kernel ``char_kernel``) max-pooled over the word's first ``max_word_chars``
  characters, case kept;
- a shape embedding: capitalization pattern (lower, Title, UPPER, mIxed, no letters) x has-digit.

The context layer is a BiLSTM (``kind="lstm"``, ``layers`` layers, ``hidden`` units over both
directions) or a residual stack of width-3 convolutions (``kind="cnn"``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Literal

import torch
from torch import nn

from .base import Encoder, by_length, pad_ids
from .vocab import UNK_ID, Vocab, load_vocabs, save_vocabs

VOCAB_FILE = "vocab.json"
NUM_SHAPES = 1 + 5 * 2  # pad + cap pattern x has digit
_DIGITS = re.compile(r"\d")
CHAR_CACHE = 1 << 16  # words whose char ids featurize keeps


@lru_cache(maxsize=1 << 16)
def normalize_word(word: str, lower: bool = True, norm_digits: bool = True) -> str:
    """The vocabulary key of a word: lowercased, every digit mapped to ``0``."""
    if lower:
        word = word.lower()
    if norm_digits:
        word = _DIGITS.sub("0", word)
    return word


@lru_cache(maxsize=1 << 16)
def word_shape(word: str) -> int:
    """Shape id in ``1..NUM_SHAPES-1``: ``1 + 2 * cap_pattern + has_digit`` (0 is padding).

    Cap patterns: 0 lower, 1 Title, 2 UPPER, 3 mIxed, 4 no cased letters.
    """
    lower = word.lower()
    if lower == word.upper():
        cap = 4
    elif word == lower:
        cap = 0
    elif word.isupper():
        cap = 2
    elif word.istitle():
        cap = 1
    else:
        cap = 3
    return 1 + 2 * cap + int(_DIGITS.search(word) is not None)


class CharCNN(nn.Module):
    """Character embeddings, one convolution, max-pool over the characters of each word."""

    def __init__(self, num_chars: int, char_dim: int, out_dim: int, kernel: int):
        super().__init__()
        self.embed = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, out_dim, kernel, padding=kernel // 2)

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        """``char_ids (N, C)`` (0 = padding, every row has >= 1 char) -> ``(N, out_dim)``."""
        x = self.embed(char_ids).transpose(1, 2)  # (N, D, C)
        h = self.conv(x)  # (N, O, C)
        pad = (char_ids == 0).unsqueeze(1)  # (N, 1, C)
        h = h.masked_fill(pad, float("-inf"))
        return h.max(dim=2).values  # (N, O)


def reversal_index(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """``(B, T)`` positions that reverse each row's first ``lengths[b]`` and leave its padding in place."""
    t = torch.arange(T, device=lengths.device)  # (T,)
    n = lengths[:, None]  # (B, 1)
    return torch.where(t < n, n - 1 - t, t)  # (B, T)


def _direction(x: torch.Tensor, params: list[torch.Tensor], hidden: int, training: bool) -> torch.Tensor:
    """One direction of one LSTM layer over ``x (B, T, D)`` -> ``(B, T, hidden)``, run by the kernel
    ``nn.LSTM.forward`` calls (``torch.lstm``, oneDNN's fused RNN on CPU) on ``params``
    (``weight_ih, weight_hh[, bias_ih, bias_hh]`` of one direction of a real ``nn.LSTM``), zero initial
    state, so gradients reach those parameters."""
    h0 = x.new_zeros(1, x.shape[0], hidden)  # (1, B, hidden)
    return torch.lstm(x, (h0, h0), params, len(params) == 4, 1, 0.0, training, False, True)[0]


def bilstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``lstm`` (bidirectional, batch_first) over right-padded ``x (B, T, D)`` -> ``(B, T, 2H)``.

    The same outputs at real positions as running it on a packed sequence, without packing: the
    forward direction runs on ``x`` as is (padding only comes after), the backward direction on
    each row reversed within its length. Both run unpacked, which lets oneDNN's fused RNN kernel
    do the work (packed sequences fall back to a step-by-step loop; timings in BENCHMARKS.md).
    Each direction of each layer is one call of the LSTM kernel on ``lstm``'s own parameters
    (``weight_ih_l{k}``, ``..._reverse``; :func:`_direction`), so gradients reach them and the state
    dict is the ``nn.LSTM``'s. Outputs at padding positions are not meaningful (the caller
    masks them).
    """
    if not (lstm.bidirectional and lstm.batch_first) or lstm.proj_size:
        raise ValueError("bilstm needs a bidirectional, batch_first nn.LSTM without projections")
    idx = reversal_index(lengths, x.shape[1])[..., None]  # (B, T, 1); its own inverse

    def flip(z: torch.Tensor) -> torch.Tensor:
        return z.gather(1, idx.expand_as(z))  # (B, T, D)

    names = ["weight_ih", "weight_hh", *(["bias_ih", "bias_hh"] if lstm.bias else [])]
    out = x  # (B, T, D)
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        # oneDNN has no bf16 LSTM primitive on CPUs without native bf16 (AVX2 only, e.g. AMD EPYC
        # Milan: "could not create a primitive descriptor"), so on CPU the LSTM runs in float32
        with torch.autocast("cpu", enabled=False):
            return bilstm(lstm, x.float(), lengths)
    for layer in range(lstm.num_layers):
        if layer > 0 and lstm.dropout > 0:
            out = nn.functional.dropout(out, lstm.dropout, lstm.training)
        fwd = [getattr(lstm, f"{n}_l{layer}") for n in names]
        bwd = [getattr(lstm, f"{n}_l{layer}_reverse") for n in names]
        h_fwd = _direction(out, fwd, lstm.hidden_size, lstm.training)  # (B, T, H)
        h_bwd = _direction(flip(out), bwd, lstm.hidden_size, lstm.training)  # (B, T, H), each row reversed
        out = torch.cat([h_fwd, flip(h_bwd)], dim=-1)  # (B, T, 2H)
    return out


class ConvStack(nn.Module):
    """Residual width-``kernel`` convolutions over words; padding is zeroed before each layer."""

    def __init__(self, in_dim: int, hidden: int, layers: int, kernel: int, dropout: float):
        super().__init__()
        self.proj = nn.Linear(in_dim, hidden)
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2) for _ in range(layers)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        h = self.proj(x) * m  # (B, T, H)
        for conv in self.convs:
            r = conv(h.transpose(1, 2)).transpose(1, 2)  # (B, T, H)
            h = (h + self.dropout(torch.relu(r))) * m  # (B, T, H)
        return h


class SmallEncoder(Encoder):
    """Word + char CNN + shape features under a BiLSTM or CNN; see the module docstring.

    Build it from training words with :meth:`build`; rebuild it from a saved folder with
    :meth:`load`. ``featurize`` returns ``word_ids``, ``shape_ids`` (per word) and ``char_ids``
    (per word, a list of char ids); ``collate`` returns ``word_ids (B, T)``, ``shape_ids (B, T)``,
    ``char_ids (U, C)`` for the ``U`` distinct words of the batch (the character CNN runs once per
    distinct word), ``char_index (N,)``, the row of ``char_ids`` of each of the ``N`` real words of the
    batch in row-major order, and ``word_mask (B, T)``.
    """

    kind = "small"

    def __init__(
        self,
        words: Vocab,
        chars: Vocab,
        *,
        kind: Literal["lstm", "cnn"] = "lstm",
        word_dim: int = 100,
        char_dim: int = 30,
        char_out: int = 50,
        char_kernel: int = 3,
        shape_dim: int = 10,
        hidden: int = 200,
        layers: int = 1,
        cnn_kernel: int = 3,
        dropout: float = 0.3,
        word_dropout: float = 0.05,
        max_word_chars: int = 30,
        lower: bool = True,
        norm_digits: bool = True,
    ):
        super().__init__()
        if kind not in ("lstm", "cnn"):
            raise ValueError(f"kind must be 'lstm' or 'cnn', got {kind!r}")
        if kind == "lstm" and hidden % 2:
            raise ValueError(f"hidden must be even for a BiLSTM (both directions), got {hidden}")
        self.words, self.chars = words, chars
        self._char_ids: dict[str, list[int]] = {}  # word -> its char ids (featurize), at most CHAR_CACHE words
        self.hparams = dict(
            kind=kind, word_dim=word_dim, char_dim=char_dim, char_out=char_out,
            char_kernel=char_kernel, shape_dim=shape_dim, hidden=hidden, layers=layers,
            cnn_kernel=cnn_kernel, dropout=dropout, word_dropout=word_dropout,
            max_word_chars=max_word_chars, lower=lower, norm_digits=norm_digits,
        )  # fmt: skip
        self.word_embed = nn.Embedding(len(words), word_dim, padding_idx=0)
        self.char_cnn = CharCNN(len(chars), char_dim, char_out, char_kernel)
        self.shape_embed = nn.Embedding(NUM_SHAPES, shape_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        in_dim = word_dim + char_out + shape_dim
        if kind == "lstm":
            self.context: nn.Module = nn.LSTM(
                in_dim, hidden // 2, num_layers=layers, batch_first=True, bidirectional=True,
                dropout=dropout if layers > 1 else 0.0,
            )  # fmt: skip
        else:
            self.context = ConvStack(in_dim, hidden, layers, cnn_kernel, dropout)
        self.output_dim = hidden

    @classmethod
    def build(
        cls,
        vocab_words: Iterable[list[str]],
        min_count: int = 2,
        max_vocab: int | None = None,
        **hparams: Any,
    ) -> "SmallEncoder":
        """Build the word and char vocabularies from training texts (lists of words)."""
        lower, norm_digits = hparams.get("lower", True), hparams.get("norm_digits", True)
        word_items: list[str] = []
        char_items: list[str] = []
        for words in vocab_words:
            for w in words:
                word_items.append(normalize_word(w, lower, norm_digits))
                char_items.extend(w)
        words = Vocab.build(word_items, min_count=min_count, max_size=max_vocab)
        return cls(words, Vocab.build(char_items), **hparams)

    # -- featurize / collate (CPU, workers) ---------------------------------------------------

    def featurize(self, words: list[str]) -> dict[str, Any]:
        hp = self.hparams
        keys = [normalize_word(w, hp["lower"], hp["norm_digits"]) for w in words]
        cache = self._char_ids
        if len(cache) > CHAR_CACHE:
            cache.clear()
        chars = [cache.get(w) or cache.setdefault(w, self.chars.ids(w[: hp["max_word_chars"]]) or [UNK_ID])
                 for w in words]  # fmt: skip
        return {
            "word_ids": self.words.ids(keys),
            "shape_ids": [word_shape(w) for w in words],
            "char_ids": chars,
        }

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        word_ids, mask = pad_ids([f["word_ids"] for f in features])
        shape_ids, _ = pad_ids([f["shape_ids"] for f in features])
        unique: dict[tuple[int, ...], int] = {}  # a word's char ids -> its row in char_ids
        index = [unique.setdefault(tuple(c), len(unique)) for f in features for c in f["char_ids"]]
        char_ids, _ = pad_ids(list(unique)) if unique else pad_ids([[UNK_ID]])
        return {
            "word_ids": word_ids,  # (B, T)
            "shape_ids": shape_ids,  # (B, T)
            "char_ids": char_ids[: len(unique)],  # (U, C): each distinct word once
            "char_index": torch.tensor(index, dtype=torch.long),  # (N,): char_ids row of each real word
            "word_mask": mask,  # (B, T)
        }

    # -- network ------------------------------------------------------------------------------

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        word_ids, mask = batch["word_ids"], batch["word_mask"]
        B, T = word_ids.shape
        if self.training and self.hparams["word_dropout"] > 0:
            drop = torch.rand(B, T, device=word_ids.device) < self.hparams["word_dropout"]
            word_ids = word_ids.masked_fill(drop & mask, UNK_ID)  # (B, T)
        w = self.word_embed(word_ids)  # (B, T, Dw)
        c_real = self.char_cnn(batch["char_ids"])[batch["char_index"]]  # (U, Dc) -> (N, Dc)
        c = w.new_zeros(B, T, c_real.shape[-1])  # (B, T, Dc)
        c[mask] = c_real.to(c.dtype)
        s = self.shape_embed(batch["shape_ids"])  # (B, T, Ds)
        x = self.dropout(torch.cat([w, c, s], dim=-1))  # (B, T, Dw + Dc + Ds)
        if isinstance(self.context, nn.LSTM):
            lengths = mask.sum(1).clamp(min=1)  # (B,)
            h = by_length(lambda rows, n: bilstm(self.context, x[rows, :n], lengths[rows]), lengths.tolist(), T,
                          device=x.device)  # (B, T, H)  # fmt: skip
        else:
            h = self.context(x, mask)  # (B, T, H)
        return self.dropout(h) * mask.unsqueeze(-1).to(h.dtype)  # (B, T, H)

    # -- export -------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, **self.hparams}

    def save(self, folder: Path) -> None:
        """Write ``vocab.json`` (word and char vocabularies); weights travel in the state dict."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_vocabs(folder / VOCAB_FILE, words=self.words, chars=self.chars)

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> "SmallEncoder":
        """Rebuild from ``vocab.json`` and :meth:`config`; weights come with ``load_state_dict``."""
        vocabs = load_vocabs(Path(folder) / VOCAB_FILE)
        hparams = {k: v for k, v in config.items() if k != "type"}
        return cls(vocabs["words"], vocabs["chars"], **hparams)
