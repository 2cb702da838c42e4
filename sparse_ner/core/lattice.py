"""Annotations as lattices: which tag sequences are consistent with what the annotator said.

A tag sequence is *consistent* with an :class:`Annotation` when

- every accepted span ``(s, e, L)`` is exactly an entity of the sequence (BIO: ``B-L`` at ``s``,
  ``I-L`` up to ``e``, and the tag after ``e`` does not continue it; BIOES: ``B-L I-L .. E-L`` or
  ``S-L``);
- no rejected span ``(s, e, L)`` is exactly an entity of the sequence (its tokens may still be part
  of a different entity, or of an entity with another label);
- if the annotation is complete, every token outside the accepted spans is ``O``.

Accepts and completeness are per-position restrictions. Rejects are not: "this exact entity is not
in the sequence" couples all its tokens and the one after it, and several rejects on one text may
overlap or nest, so they cannot be treated as independent factors. They are encoded *exactly* by
enlarging the state space: for each distinct ``(start, label)`` of a rejected span, copies of the
inside tags of ``label`` ("tracked" states) follow an entity that began at ``start`` with that
label. Every tag sequence maps to exactly one path of the enlarged lattice (an entity that began at
a tracked start must continue in the tracked copies), and the rejected endings are removed from the
lattice: a tracked entity may not end at a rejected end. The consistent set is then a plain
sub-lattice, and its log-partition is computed by the same forward algorithm as the full one
(:mod:`sparse_ner.core.crf`).

States ``0..K-1`` of a :class:`Lattice` are the base tags; states ``K..S-1`` are tracked copies,
``base_of`` maps every state to the tag whose scores it shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from sparse_ner.tags import Scheme, TokenSpan, allowed_transitions, inside_prefixes, split_tag

if TYPE_CHECKING:
    from sparse_ner.data.example import Example


@dataclass
class Annotation:
    """What the loss needs to know of one text: token spans are ``(start, end_inclusive, label)``."""

    length: int
    accepted: list[TokenSpan] = field(default_factory=list)
    rejected: list[TokenSpan] = field(default_factory=list)
    complete: bool = False

    def check(self) -> None:
        """Raise ``ValueError`` for spans outside the text, overlapping accepts, or contradictions."""
        for s, e, label in self.accepted + self.rejected:
            if not (0 <= s <= e < self.length):
                raise ValueError(f"span ({s}, {e}, {label!r}) outside a text of {self.length} tokens")
        covered = np.zeros(self.length, dtype=bool)
        for s, e, label in self.accepted:
            if covered[s : e + 1].any():
                raise ValueError(f"accepted span ({s}, {e}, {label!r}) overlaps another accepted span")
            covered[s : e + 1] = True
        both = set(self.accepted) & set(self.rejected)
        if both:
            raise ValueError(f"spans both accepted and rejected: {sorted(both)}")


def annotation_of(example: "Example", use_rejects: bool = True, complete: bool | None = None) -> Annotation:
    """The :class:`Annotation` of a merged :class:`~sparse_ner.data.example.Example`."""
    return Annotation(
        length=len(example.tokens),
        accepted=sorted({sp.key for sp in example.accepted}),
        rejected=sorted({sp.key for sp in example.rejected}) if use_rejects else [],
        complete=example.complete if complete is None else complete,
    )


def strict_rejects(ann: Annotation, labels: Sequence[str]) -> Annotation:
    """``ann`` with each rejected span ``(s, e, X)`` also rejected with every other label that is
    not accepted on ``(s, e)``: the sequences in which a rejected span is no entity at all."""
    accepted = set(ann.accepted)
    wide = {(s, e, y) for s, e, _ in ann.rejected for y in labels if (s, e, y) not in accepted}
    return Annotation(ann.length, list(ann.accepted), sorted(wide), ann.complete)


@dataclass
class Lattice:
    """A batch of annotation lattices over ``S >= K`` states.

    - ``mask`` ``(B, T)``: real (non-padding) positions.
    - ``base_of`` ``(B, S)``: the tag each state shares scores with.
    - ``start`` ``(B, S)``: states allowed at position 0.
    - ``allowed`` ``(B, T-1, S, S)``: ``allowed[b, t, i, j]`` when state ``j`` at ``t+1`` may follow
      state ``i`` at ``t`` (tag-scheme transitions, the annotation, and the tracking of rejects).
    - ``end`` ``(B, S)``: states allowed at each example's last position.
    """

    mask: torch.Tensor
    base_of: torch.Tensor
    start: torch.Tensor
    allowed: torch.Tensor
    end: torch.Tensor

    FIELDS = ("mask", "base_of", "start", "allowed", "end")

    def to(self, device: torch.device | str) -> "Lattice":
        return Lattice(*(getattr(self, f).to(device) for f in self.FIELDS))

    def pin_memory(self) -> "Lattice":
        return Lattice(*(getattr(self, f).pin_memory() for f in self.FIELDS))

    @classmethod
    def cat(cls, parts: Sequence["Lattice"]) -> "Lattice":
        """Lattices over the same states stacked on the batch dimension."""
        return cls(*(torch.cat([getattr(p, f) for p in parts]) for f in cls.FIELDS))

    @property
    def num_states(self) -> int:
        return self.base_of.shape[1]

    def split(self, n: int) -> tuple["Lattice", "Lattice"]:
        """The first ``n`` examples and the rest, as two lattices over the same states."""
        return (Lattice(*(getattr(self, f)[:n] for f in self.FIELDS)), Lattice(*(getattr(self, f)[n:] for f in self.FIELDS)))


class _SchemeTables:
    """Per-tag-inventory lookups, computed once per (tags, scheme)."""

    def __init__(self, tags: Sequence[str], scheme: Scheme, use_scheme: bool = True):
        self.tags = list(tags)
        self.scheme = scheme
        self.index = {t: i for i, t in enumerate(self.tags)}
        K = len(self.tags)
        if use_scheme:
            start, trans, end = (x.numpy() for x in allowed_transitions(self.tags, scheme))
        else:
            start, trans, end = np.ones(K, bool), np.ones((K, K), bool), np.ones(K, bool)
        self.start, self.trans, self.end = start, trans, end
        self.inside = inside_prefixes(scheme)
        # inside tags of each label, in the order tracked copies are made
        self.inside_of: dict[str, list[int]] = {}
        for i, tag in enumerate(self.tags):
            p, label = split_tag(tag)
            if label is not None and p in self.inside:
                self.inside_of.setdefault(label, []).append(i)

    def tag(self, prefix: str, label: str) -> int:
        try:
            return self.index[f"{prefix}-{label}"]
        except KeyError:
            raise ValueError(f"label {label!r} has no tag {prefix}-{label} in {self.tags}") from None


_TABLES: dict[tuple, _SchemeTables] = {}


def _tables(tags: Sequence[str], scheme: Scheme, use_scheme: bool) -> _SchemeTables:
    key = (tuple(tags), scheme, use_scheme)
    if key not in _TABLES:
        _TABLES[key] = _SchemeTables(tags, scheme, use_scheme)
    return _TABLES[key]


def _example_lattice(ann: Annotation, tb: _SchemeTables) -> tuple[np.ndarray, ...]:
    """One example's ``base_of (S,)``, ``start (S,)``, ``allowed (n-1, S, S)``, ``end (S,)``."""
    n, K, bio = ann.length, len(tb.tags), tb.scheme == "bio"
    ann.check()

    # Tracked copies: one group per distinct (start, label) of a rejected span.
    groups = sorted({(s, label) for s, _, label in ann.rejected})
    base_of = list(range(K))
    group_states: list[np.ndarray] = []
    for _, label in groups:
        first = len(base_of)
        base_of += tb.inside_of[label] if label in tb.inside_of else [tb.tag("I", label)]
        group_states.append(np.arange(first, len(base_of)))
    base = np.asarray(base_of)
    S = len(base)

    # Which base tags each position may carry (accepts, completeness).
    unary = np.ones((n, K), dtype=bool)
    if ann.complete:
        unary[:, 1:] = False  # everything O unless accepted
    for s, e, label in ann.accepted:
        unary[s : e + 1] = False
        if bio:
            unary[s, tb.tag("B", label)] = True
            unary[s + 1 : e + 1, tb.tag("I", label)] = True
            if e + 1 < n:
                unary[e + 1, tb.tag("I", label)] = False  # the entity ends at e
        elif s == e:
            unary[s, tb.tag("S", label)] = True
        else:
            unary[s, tb.tag("B", label)] = True
            unary[s + 1 : e, tb.tag("I", label)] = True
            unary[e, tb.tag("E", label)] = True
    unary = unary[:, base]  # (n, S): a tracked copy may carry what its base tag may
    for (s, _), states in zip(groups, group_states):
        unary[: s + 1, states] = False  # a tracked entity is inside only after its start

    # Transitions: the scheme's, on the enlarged state space, then the tracking rules.
    trans = tb.trans[base[:, None], base[None, :]]  # (S, S)
    allowed = np.broadcast_to(trans, (max(n - 1, 0), S, S)).copy()  # (n-1, S, S)
    for (s, label), states in zip(groups, group_states):
        b = tb.tag("B", label)
        inside_base = np.asarray(tb.inside_of[label])
        entered = np.zeros(S, dtype=bool)
        entered[states] = True
        # Only B-label at s, or the group itself, leads into the group's states ...
        keep = allowed[:, :, states].copy()
        allowed[:, :, states] = False
        if s < n - 1:
            allowed[s, b, states] = keep[s, b]
        allowed[s + 1 :, states[:, None], states[None, :]] = keep[s + 1 :, states, :]
        # ... and an entity begun there continues only in the group's states.
        if s < n - 1:
            allowed[s, b, inside_base] = False
        allowed[:, states[:, None], inside_base[None, :]] = False
        # Forbid ending exactly at a rejected end.
        for rs, re_, rl in ann.rejected:
            if (rs, rl) != (s, label):
                continue
            if not bio:  # BIOES: the entity ends on E-label (or is S-label)
                if rs == re_:
                    unary[rs, tb.tag("S", label)] = False
                else:
                    unary[re_, states[base[states] == tb.tag("E", label)]] = False
                continue
            enders = np.array([b]) if rs == re_ else states  # states at re_ that would end there
            if re_ == n - 1:
                unary[re_, enders] = False
            else:
                allowed[re_][np.ix_(enders, ~entered)] = False

    start = tb.start[base] & unary[0]
    end = tb.end[base].copy()
    if n > 1:
        allowed &= unary[:-1, :, None] & unary[1:, None, :]
    # the unary of position t > 0 is folded into the transitions into it; of position 0, into start
    return base, start, allowed, end


def build_lattice(
    annotations: Sequence[Annotation],
    tags: Sequence[str],
    scheme: Scheme = "bio",
    length: int | None = None,
    use_scheme: bool = True,
) -> Lattice:
    """Batch the lattices of ``annotations`` (ragged), padded to ``length`` positions.

    ``use_scheme=False`` drops the tag-scheme transition constraints (every transition allowed),
    keeping only what the annotation says.
    """
    if not annotations:
        raise ValueError("build_lattice needs at least one annotation")
    tb = _tables(tags, scheme, use_scheme)
    T = max(a.length for a in annotations) if length is None else length
    if any(a.length > T for a in annotations) or any(a.length < 1 for a in annotations):
        raise ValueError(f"annotation lengths {[a.length for a in annotations]} must be in 1..{T}")
    parts = [_example_lattice(a, tb) for a in annotations]
    B, S = len(parts), max(p[0].shape[0] for p in parts)
    base_of = np.zeros((B, S), dtype=np.int64)
    start = np.zeros((B, S), dtype=bool)
    allowed = np.zeros((B, max(T - 1, 0), S, S), dtype=bool)
    end = np.zeros((B, S), dtype=bool)
    mask = np.zeros((B, T), dtype=bool)
    for b, (a, (bo, st, al, en)) in enumerate(zip(annotations, parts)):
        s = bo.shape[0]
        base_of[b, :s], start[b, :s], end[b, :s] = bo, st, en
        allowed[b, : a.length - 1, :s, :s] = al
        mask[b, : a.length] = True
    return Lattice(
        mask=torch.from_numpy(mask),
        base_of=torch.from_numpy(base_of),
        start=torch.from_numpy(start),
        allowed=torch.from_numpy(allowed),
        end=torch.from_numpy(end),
    )


def free_lattice(mask: torch.Tensor, tags: Sequence[str], scheme: Scheme = "bio", use_scheme: bool = True,
                 num_states: int | None = None) -> Lattice:
    """The lattice of every scheme-valid sequence (no annotation), over ``num_states`` states.

    States beyond ``K`` are padding that is never allowed, so the free and the constrained lattices of
    one batch can share one forward pass.
    """
    tb = _tables(tags, scheme, use_scheme)
    B, T = mask.shape
    K = len(tb.tags)
    S = K if num_states is None else num_states
    base_of = torch.zeros(B, S, dtype=torch.long)
    base_of[:, :K] = torch.arange(K)
    real = torch.zeros(S, dtype=torch.bool)
    real[:K] = True
    start = torch.zeros(S, dtype=torch.bool)
    start[:K] = torch.from_numpy(tb.start)
    end = torch.zeros(S, dtype=torch.bool)
    end[:K] = torch.from_numpy(tb.end)
    trans = torch.zeros(S, S, dtype=torch.bool)
    trans[:K, :K] = torch.from_numpy(tb.trans)
    return Lattice(
        mask=mask,
        base_of=base_of.to(mask.device),
        start=start.expand(B, S).to(mask.device),
        allowed=trans.expand(B, max(T - 1, 0), S, S).to(mask.device),
        end=end.expand(B, S).to(mask.device),
    )
