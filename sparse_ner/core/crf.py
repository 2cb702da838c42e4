"""A linear-chain CRF whose one forward algorithm gives everything.

The forward recursion :func:`forward` runs over a :class:`~sparse_ner.core.lattice.Lattice` in a
semiring: log-sum-exp gives the log-partition (of every scheme-valid sequence, or of only the
sequences consistent with an annotation), max gives the Viterbi score. Marginals are the autograd
gradient of the log-partition, and the Viterbi path is the gradient of the max score, so there is no
second dynamic program and no hand-written backward pass.

``CRF(transitions=False)`` is the softmax (token-independent) head: emissions are normalized per
token and transition scores are fixed at zero; the same lattices give its exact partial-label loss.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Sequence

import torch
from torch import nn

from sparse_ner.core.lattice import Lattice, free_lattice
from sparse_ner.tags import Scheme, TokenSpan, decode_tags, labels_of

NEG_INF = -1e9  # the score of a forbidden transition: exp(NEG_INF - anything real) == 0


def _logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.logsumexp(x, dim=dim)


def _max(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x.max(dim=dim).values  # gradient flows to one argmax, so autograd traces one path


Reduce = Callable[[torch.Tensor, int], torch.Tensor]


def potentials(
    emissions: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor, end: torch.Tensor, lattice: Lattice
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores on the lattice's states: ``first (B, S)``, ``steps (B, T-1, S, S)``, ``last (B, S)``.

    ``emissions`` ``(B, T, K)``, ``transitions`` ``(K, K)``, ``start``/``end`` ``(K,)`` are tag scores;
    each state takes the scores of its base tag, and forbidden entries get ``NEG_INF``.
    """
    B, T, K = emissions.shape
    base = lattice.base_of  # (B, S)
    S = base.shape[1]
    emis = emissions.gather(2, base[:, None, :].expand(B, T, S))  # (B, T, S)
    trans = transitions[base[:, :, None], base[:, None, :]]  # (B, S, S)
    first = (start[base] + emis[:, 0]).masked_fill(~lattice.start, NEG_INF)  # (B, S)
    steps = trans[:, None] + emis[:, 1:, None, :]  # (B, T-1, S, S)
    steps = steps.masked_fill(~lattice.allowed, NEG_INF)
    last = end[base].masked_fill(~lattice.end, NEG_INF)  # (B, S)
    return first, steps, last


def forward(first: torch.Tensor, steps: torch.Tensor, last: torch.Tensor, mask: torch.Tensor,
            reduce: Reduce = _logsumexp) -> torch.Tensor:
    """The forward algorithm in a semiring: ``reduce`` over all paths of the lattice, ``(B,)``.

    ``first (B, S)``, ``steps (B, T-1, S, S)``, ``last (B, S)``, ``mask (B, T)`` (left-aligned).
    Padding positions carry the state unchanged, so each sequence ends at its own length.
    """
    alpha = first  # (B, S)
    # unbind once: indexing steps[:, t] in the loop would make autograd zero-fill a full-size
    # gradient per step (quadratic in T)
    for step, real in zip(steps.unbind(1), mask[:, 1:, None].unbind(1)):  # (B, S, S), (B, 1)
        nxt = reduce(alpha.unsqueeze(2) + step, 1)  # (B, S, 1) + (B, S, S) -> (B, S)
        alpha = torch.where(real, nxt, alpha)
    return reduce(alpha + last, 1)  # (B,)


class CRF(nn.Module):
    """Linear-chain CRF over a tag inventory with scheme constraints in training and decoding.

    Args:
        tags: the tag inventory (``sparse_ner.tags.tag_names``), ``"O"`` first.
        scheme: ``"bio"`` or ``"bioes"``.
        transitions: learn transition scores (a CRF); ``False`` gives the softmax head.
    """

    def __init__(self, tags: Sequence[str], scheme: Scheme = "bio", transitions: bool = True):
        super().__init__()
        self.tags = list(tags)
        self.scheme = scheme
        self.has_transitions = transitions
        K = len(self.tags)
        if transitions:
            self.transitions = nn.Parameter(torch.zeros(K, K))
            self.start_transitions = nn.Parameter(torch.zeros(K))
            self.end_transitions = nn.Parameter(torch.zeros(K))
        else:
            self.register_buffer("transitions", torch.zeros(K, K), persistent=False)
            self.register_buffer("start_transitions", torch.zeros(K), persistent=False)
            self.register_buffer("end_transitions", torch.zeros(K), persistent=False)

    @property
    def num_tags(self) -> int:
        return len(self.tags)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}, scheme={self.scheme!r}, transitions={self.has_transitions}"

    # -- scores -------------------------------------------------------------------------------

    def _check(self, emissions: torch.Tensor, mask: torch.Tensor) -> None:
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions must be (B, T, {self.num_tags}), got {tuple(emissions.shape)}")
        if mask.shape != emissions.shape[:2]:
            raise ValueError(f"mask {tuple(mask.shape)} does not match emissions {tuple(emissions.shape)}")
        if not bool(mask[:, 0].all()):
            raise ValueError("every sequence needs at least one position, left-aligned (mask[:, 0] all true)")

    def _scores(self, emissions: torch.Tensor) -> torch.Tensor:
        return emissions if self.has_transitions else emissions.log_softmax(-1)

    def _run(self, emissions: torch.Tensor, lattice: Lattice, reduce: Reduce = _logsumexp) -> torch.Tensor:
        return self.forward_scores(self._scores(emissions), lattice, reduce)

    def forward_scores(self, scores: torch.Tensor, lattice: Lattice, reduce: Reduce = _logsumexp) -> torch.Tensor:
        """The forward algorithm over per-token tag ``scores`` ``(B, T, K)`` (already normalized for
        the softmax head): ``(B,)``. Differentiable, so ``d log Z / d scores`` are the marginals."""
        first, steps, last = potentials(scores, self.transitions, self.start_transitions, self.end_transitions,
                                        lattice)
        return forward(first, steps, last, lattice.mask, reduce)

    def _free(self, mask: torch.Tensor, num_states: int | None = None) -> Lattice:
        return free_lattice(mask, self.tags, self.scheme, num_states=num_states)

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z over every scheme-valid tag sequence: ``(B,)``."""
        self._check(emissions, mask)
        return self._run(emissions, self._free(mask))

    def log_partitions(self, emissions: torch.Tensor, lattice: Lattice, *more: Lattice) -> tuple[torch.Tensor, ...]:
        """``(log Z, log Z of the sequences consistent with the annotation, ...)``, each ``(B,)``.

        The free lattice, ``lattice`` and any ``more`` lattices (over the same states) go through
        one forward pass, stacked on the batch dimension.
        """
        return self._stacked(self._scores(emissions), lattice, *more)

    def _stacked(self, scores: torch.Tensor, lattice: Lattice, *more: Lattice) -> tuple[torch.Tensor, ...]:
        mask = lattice.mask
        self._check(scores, mask)
        free = self._free(mask, lattice.num_states)
        parts = (free, lattice, *more)
        log_z = self.forward_scores(torch.cat([scores] * len(parts)), Lattice.cat(parts))  # (len(parts) * B,)
        return tuple(log_z.split(len(scores)))

    def nll(self, emissions: torch.Tensor, lattice: Lattice, strict: Lattice | None = None,
            reject_prior: float = 0.0) -> torch.Tensor:  # fmt: skip
        """Partial-label negative log-likelihood ``log Z - log Z(consistent)``: ``(B,)``.

        Equals the ordinary CRF NLL for a complete annotation, and 0 for an empty one. With a
        ``strict`` lattice (rejected spans ruled out for every label) and ``reject_prior`` ``lam``,
        ``log Z - log((1 - lam) Z(consistent) + lam Z(strict))`` (see :class:`~sparse_ner.core.tagger.Tagger`).
        """
        return self.nll_and_marginals(emissions, lattice, strict, reject_prior, marginals=False)[0]

    def nll_and_marginals(self, emissions: torch.Tensor, lattice: Lattice, strict: Lattice | None = None,
                          reject_prior: float = 0.0, marginals: bool = True
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
        """:meth:`nll` ``(B,)`` and the model's marginals ``(B, T, K)`` from the same forward pass.

        The marginals are the gradient of the free log Z by the scores, kept in the graph
        (``create_graph``) when gradients are on, so a loss on them (the entity-ratio penalty)
        trains through them. One forward pass serves both: a separate pass for the marginals
        would repeat the free lattice's forward.
        """
        use_strict = strict is not None and reject_prior != 0.0
        grad_on = torch.is_grad_enabled() and emissions.requires_grad  # the caller trains through the result
        with torch.enable_grad() if marginals else contextlib.nullcontext():
            scores = self._scores(emissions)  # (B, T, K)
            if marginals and not scores.requires_grad:  # no graph (evaluation): a leaf to differentiate by
                scores = scores.detach().requires_grad_(True)
            log_zs = self._stacked(scores, lattice, *((strict,) if use_strict else ()))
            log_z, log_z_consistent = log_zs[0], log_zs[1]
            if use_strict:
                mixed = torch.logaddexp(log_z_consistent + math.log1p(-reject_prior),
                                        log_zs[2] + math.log(reject_prior))  # fmt: skip
                nll = log_z - mixed
            else:
                nll = log_z - log_z_consistent
            marg = None
            if marginals:
                (marg,) = torch.autograd.grad(log_z.sum(), scores, create_graph=grad_on)
                marg = marg * lattice.mask[..., None]
        if marginals and not grad_on:
            nll = nll.detach()
        return nll, marg

    # -- inference ----------------------------------------------------------------------------

    def _grad_of(self, emissions: torch.Tensor, mask: torch.Tensor, reduce: Reduce):
        """Run the forward in ``reduce`` and differentiate it by the potentials of the free lattice."""
        with torch.enable_grad():
            lattice = self._free(mask)
            first, steps, last = potentials(self._scores(emissions.detach()), self.transitions.detach(),
                                            self.start_transitions.detach(), self.end_transitions.detach(), lattice)
            first.requires_grad_(True)
            steps.requires_grad_(True)
            score = forward(first, steps, last, mask, reduce)
            d_first, d_steps = torch.autograd.grad(score.sum(), (first, steps), allow_unused=True,
                                                   materialize_grads=True)  # T == 1: no steps
        return d_first, d_steps  # (B, K), (B, T-1, K, K)

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``P(tag at t = k)`` under the model, ``(B, T, K)``: the gradient of log Z by the scores."""
        self._check(emissions, mask)
        with torch.enable_grad():
            scores = self._scores(emissions.detach()).requires_grad_(True)  # (B, T, K)
            first, steps, last = potentials(scores, self.transitions.detach(), self.start_transitions.detach(),
                                            self.end_transitions.detach(), self._free(mask))
            (grad,) = torch.autograd.grad(forward(first, steps, last, mask).sum(), scores)
        return grad * mask[..., None]

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The best scheme-valid tag sequence of each example (Viterbi), as tag indices."""
        self._check(emissions, mask)
        d_first, d_steps = self._grad_of(emissions, mask, _max)
        first_tag = d_first.argmax(-1)  # (B,)
        later = d_steps.sum(2).argmax(-1)  # (B, T-1): the state entered at t+1
        paths = torch.cat([first_tag[:, None], later], 1)  # (B, T)
        lengths = mask.sum(1).tolist()
        return [p[:n] for p, n in zip(paths.tolist(), lengths)]

    def decode_spans(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[TokenSpan]]:
        """Viterbi, as token spans ``(start, end_inclusive, label)``."""
        return [decode_tags([self.tags[k] for k in path], self.scheme) for path in self.decode(emissions, mask)]

    def span_probs(self, emissions: torch.Tensor, mask: torch.Tensor,
                   spans: Sequence[Sequence[TokenSpan]]) -> list[list[float]]:
        """Exact ``P(span is an entity of the sequence)`` for each given span.

        The posterior of a linear-chain CRF is a Markov chain, so the probability of the span's tag
        pattern (and, in BIO, of the next tag not continuing it) is a product of pairwise marginals
        divided by the unary marginals between them; both come from one autograd pass. All spans of
        the batch are scored at once (padded to the longest span), with no per-span Python loop.
        """
        self._check(emissions, mask)
        if len(spans) != emissions.shape[0]:
            raise ValueError(f"spans has {len(spans)} lists for a batch of {emissions.shape[0]}")
        flat = [(b, s, e, label) for b, example in enumerate(spans) for s, e, label in example]
        if not flat:
            return [[] for _ in spans]
        d_first, d_steps = self._grad_of(emissions, mask, _logsumexp)
        dev = emissions.device
        unary = torch.cat([d_first[:, None], d_steps.sum(2)], 1).double().clamp_min(1e-300)  # (B, T, K)
        pair = d_steps.double().clamp_min(1e-300)  # (B, T-1, K, K)
        B, T, K = unary.shape
        labels = {label: i for i, label in enumerate(labels_of(self.tags))}
        unknown = {label for *_, label in flat} - labels.keys()
        if unknown:
            raise ValueError(f"labels {sorted(unknown)} are not in the tag inventory {self.tags}")
        b, s, e, lab = (torch.tensor(col, device=dev) for col in
                        zip(*[(b, s, e, labels[label]) for b, s, e, label in flat]))  # (N,) each
        n = mask.sum(1)[b]  # (N,)
        bad = (s < 0) | (e < s) | (e >= n)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(f"span {flat[i][1:]} outside a sequence of length {int(n[i])}")
        index = {t: i for i, t in enumerate(self.tags)}
        table = {p: torch.tensor([index.get(f"{p}-{label}", 0) for label in labels], device=dev) for p in "BIES"}
        length = e - s + 1  # (N,)
        D = int(length.max())
        d = torch.arange(D, device=dev)[None, :]  # (1, D)
        k = table["I"][lab][:, None].expand(-1, D).clone()  # (N, D): the span's tag pattern
        k[:, 0] = table["B"][lab]
        if self.scheme == "bioes":
            last = d == (length - 1)[:, None]  # (N, D)
            k = torch.where(last, table["E"][lab][:, None], k)
            k[:, 0] = torch.where(length == 1, table["S"][lab], table["B"][lab])
        pos = (s[:, None] + d).clamp(max=T - 1)  # (N, D)
        rows = b[:, None].expand(-1, D)  # (N, D)
        log_u = unary[rows, pos, k].log()  # (N, D)
        inner = (d >= 1) & (d <= (length - 2)[:, None])  # positions divided out
        logp = torch.where(length == 1, log_u[:, 0], -(log_u * inner).sum(1))  # (N,)
        if D > 1:
            step = pos[:, :-1].clamp(max=max(T - 2, 0))  # (N, D-1)
            log_pair = pair[rows[:, :-1], step, k[:, :-1], k[:, 1:]].log()  # (N, D-1)
            logp = logp + (log_pair * (d[:, :-1] < (length - 1)[:, None])).sum(1)
        if self.scheme == "bio":  # the next tag must not continue the entity
            k_last = k.gather(1, (length - 1)[:, None])[:, 0]  # (N,)
            has_next = e + 1 < n
            at = e.clamp(max=max(T - 2, 0))
            if T > 1:
                stay = pair[b, at, k_last, table["I"][lab]] / unary[b, e, k_last]
                logp = logp + torch.where(has_next, (1 - stay).clamp_min(1e-300).log(), torch.zeros_like(logp))
        probs = logp.exp().clamp(0.0, 1.0).tolist()
        out: list[list[float]] = [[] for _ in spans]
        for (bb, *_), p in zip(flat, probs):
            out[bb].append(p)
        return out
