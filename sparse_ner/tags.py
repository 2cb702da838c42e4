"""Tag schemes: tag inventories, transition constraints, and span <-> tag conversion.

Internally a tagger uses one of two schemes:

- ``"bio"`` (IOB2): ``O``, ``B-X``, ``I-X``. An entity starts with ``B-X``; ``I-X`` may only follow
  ``B-X`` or ``I-X``.
- ``"bioes"`` (BIOES, also BMES/BILOU): ``O``, ``B-X``, ``I-X``, ``E-X``, ``S-X``.

Spans here are token spans ``(start, end, label)`` with ``end`` **inclusive**, as in Prodigy's
``token_start`` / ``token_end``. Column-file encodings (IOB1, IOB2, BIOES, BMES) are decoded with
:func:`decode_tags`.
"""

from __future__ import annotations

from typing import Iterable, Literal, Sequence

import torch

Scheme = Literal["bio", "bioes"]
SCHEMES: tuple[str, ...] = ("bio", "bioes")
TokenSpan = tuple[int, int, str]


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {SCHEMES}")


def tag_names(labels: Sequence[str], scheme: Scheme = "bio") -> list[str]:
    """The tag inventory: ``O`` first, then the prefixed tags of each label in order."""
    _check_scheme(scheme)
    prefixes = "BI" if scheme == "bio" else "BIES"
    for label in labels:
        if not label or label == "O":
            raise ValueError(f"bad entity label {label!r}")
    return ["O"] + [f"{p}-{label}" for label in labels for p in prefixes]


def split_tag(tag: str) -> tuple[str, str | None]:
    """``"B-PER" -> ("B", "PER")``, ``"O" -> ("O", None)``."""
    if tag == "O":
        return "O", None
    if len(tag) < 3 or tag[1] != "-":
        raise ValueError(f"malformed tag {tag!r}; expected 'O' or 'P-LABEL'")
    return tag[0], tag[2:]


def labels_of(tags: Sequence[str]) -> list[str]:
    """Entity labels of a tag inventory, in first-seen order."""
    seen: dict[str, None] = {}
    for tag in tags:
        _, label = split_tag(tag)
        if label is not None:
            seen.setdefault(label, None)
    return list(seen)


def inside_prefixes(scheme: Scheme) -> str:
    """Prefixes of tags that continue an entity begun at an earlier position."""
    _check_scheme(scheme)
    return "I" if scheme == "bio" else "IE"


def allowed_transitions(
    tags: Sequence[str], scheme: Scheme = "bio"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which tags may start a sequence, follow each tag, and end a sequence.

    Returns boolean tensors ``start (K,)``, ``trans (K, K)`` with ``trans[i, j]`` true when tag ``j``
    may follow tag ``i``, and ``end (K,)``.
    """
    _check_scheme(scheme)
    parts = [split_tag(t) for t in tags]
    K = len(tags)
    start = torch.zeros(K, dtype=torch.bool)
    end = torch.zeros(K, dtype=torch.bool)
    trans = torch.zeros(K, K, dtype=torch.bool)
    if scheme == "bio":
        for j, (pj, lj) in enumerate(parts):
            start[j] = pj in ("O", "B")
            end[j] = True
            for i, (pi, li) in enumerate(parts):
                trans[i, j] = pj in ("O", "B") or (pj == "I" and pi in ("B", "I") and li == lj)
    else:
        for j, (pj, lj) in enumerate(parts):
            start[j] = pj in ("O", "B", "S")
            end[j] = pj in ("O", "E", "S")
            for i, (pi, li) in enumerate(parts):
                if pi in ("O", "E", "S"):
                    trans[i, j] = pj in ("O", "B", "S")
                else:  # inside an open entity: it must continue with the same label
                    trans[i, j] = pj in ("I", "E") and li == lj
    return start, trans, end


def spans_to_tags(length: int, spans: Iterable[TokenSpan], scheme: Scheme = "bio") -> list[str]:
    """Encode non-overlapping token spans (end inclusive) as a tag sequence."""
    _check_scheme(scheme)
    tags = ["O"] * length
    for s, e, label in sorted(spans):
        if not (0 <= s <= e < length):
            raise ValueError(f"span ({s}, {e}, {label!r}) outside a sequence of length {length}")
        if any(t != "O" for t in tags[s : e + 1]):
            raise ValueError(f"span ({s}, {e}, {label!r}) overlaps another span")
        if scheme == "bioes" and s == e:
            tags[s] = f"S-{label}"
            continue
        tags[s] = f"B-{label}"
        for t in range(s + 1, e + 1):
            tags[t] = f"I-{label}"
        if scheme == "bioes":
            tags[e] = f"E-{label}"
    return tags


def decode_tags(tags: Sequence[str], encoding: str = "bio") -> list[TokenSpan]:
    """Decode a tag sequence into token spans (end inclusive).

    ``encoding`` is one of ``"bio"``/``"iob2"``, ``"iob1"``, ``"bioes"``/``"bmes"``/``"bilou"``.
    Decoding is lenient in the way conlleval is: an ``I-X`` (or ``M-``/``E-X``) that does not continue
    an ``X`` entity starts a new one, so no annotated token is lost.
    """
    enc = encoding.lower()
    if enc not in ("bio", "iob2", "iob1", "bioes", "bmes", "bilou"):
        raise ValueError(f"unknown tag encoding {encoding!r}")
    spans: list[TokenSpan] = []
    cur: list | None = None  # [start, end, label]
    for t, tag in enumerate(tags):
        p, label = split_tag(tag)
        p = {"M": "I", "L": "E", "U": "S"}.get(p, p)
        if p == "O":
            if cur:
                spans.append(tuple(cur))
            cur = None
            continue
        continues = cur is not None and cur[2] == label and p in ("I", "E")
        if enc == "iob1" and p == "I":
            continues = cur is not None and cur[2] == label
        if continues:
            cur[1] = t
        else:
            if cur:
                spans.append(tuple(cur))
            cur = [t, t, label]
        if p in ("E", "S"):
            spans.append(tuple(cur))
            cur = None
    if cur:
        spans.append(tuple(cur))
    return spans


def encode_spans(length: int, spans: Iterable[TokenSpan], encoding: str = "bio") -> list[str]:
    """Encode token spans in a column-file encoding (``bio``/``iob2``, ``iob1``, ``bioes``, ``bmes``)."""
    enc = encoding.lower()
    if enc in ("bio", "iob2"):
        return spans_to_tags(length, spans, "bio")
    if enc in ("bioes", "bmes"):
        tags = spans_to_tags(length, spans, "bioes")
        return [("M" + t[1:] if t.startswith("I-") else t) for t in tags] if enc == "bmes" else tags
    if enc == "iob1":
        tags = spans_to_tags(length, spans, "bio")
        out = []
        for t, tag in enumerate(tags):
            p, label = split_tag(tag)
            prev = split_tag(tags[t - 1])[1] if t > 0 else None
            out.append(f"I-{label}" if p == "B" and prev != label else tag)
        return out
    raise ValueError(f"unknown tag encoding {encoding!r}")
