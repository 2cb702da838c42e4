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

import math
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from sparse_ner.core.lattice import Lattice, free_lattice
from sparse_ner.tags import Scheme, TokenSpan, labels_of

NEG_INF = -1e9  # the score of a forbidden transition: exp(NEG_INF - anything real) == 0


class Posterior(NamedTuple):
    """The posterior marginals of a batch (detached): ``unary`` ``P(tag at t = k)`` ``(B, T, K)`` (0 at
    padding) and ``pairwise`` ``P(tags at t, t+1 = i, j)`` ``(B, T-1, K, K)``, from one autograd pass
    (:meth:`CRF.posterior`); :meth:`CRF.span_probs` reads span probabilities off them."""

    unary: torch.Tensor
    pairwise: torch.Tensor


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

    Public methods, each on ``emissions (B, T, K)`` and a left-aligned ``mask (B, T)`` or a
    :class:`~sparse_ner.core.lattice.Lattice`: :meth:`nll` (training), :meth:`nll_and_marginals`
    (training with a loss on the marginals), :meth:`log_partition`, :meth:`marginals`, :meth:`decode`
    (Viterbi paths and their scores) and :meth:`span_probs`. All of them run the one forward
    algorithm; marginals, span probabilities and the Viterbi path come from its autograd gradient
    (:meth:`_grad_log_z`).
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

    # -- training -----------------------------------------------------------------------------

    def nll(self, emissions: torch.Tensor, lattice: Lattice, strict: Lattice | None = None,
            reject_prior: float = 0.0, prior: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Partial-label negative log-likelihood ``log Z - log Z(consistent)``: ``(B,)``.

        Equals the ordinary CRF NLL for a complete annotation, and 0 for an empty one. With a
        ``strict`` lattice (rejected spans ruled out for every label) and ``reject_prior`` ``lam``,
        ``log Z - log((1 - lam) Z(consistent) + lam Z(strict))`` (see :class:`~sparse_ner.core.tagger.Tagger`).
        ``prior`` ``(B, T, K)``: log-weights ``log q_t(k)`` added to the scores of the consistent (and
        strict) lattices only, so that the loss is ``-log sum_{y consistent} P(y) prod_t q_t(y_t)``: the
        consistent taggings weighted by a prior (a first model's posteriors, :mod:`sparse_ner.training.teacher`).
        The free lattice and the annotation's lattices go through one forward pass, stacked on the
        batch dimension.
        """
        lattices = self._lattices(emissions, lattice, strict, reject_prior)
        return _nll(self._forward(self._scores(emissions), lattices, prior), len(emissions), reject_prior)

    def nll_and_marginals(self, emissions: torch.Tensor, lattice: Lattice, strict: Lattice | None = None,
                          reject_prior: float = 0.0, prior: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """:meth:`nll` ``(B,)`` and :meth:`marginals` ``(B, T, K)`` (of the free lattice, without the
        ``prior``) from the same forward pass.

        For a loss on the marginals (the entity-ratio penalty) next to the NLL: a separate
        :meth:`marginals` call would repeat the free lattice's forward. Both are kept in the graph
        when ``emissions`` require grad (and grad mode is on), and detached otherwise.
        """
        lattices = self._lattices(emissions, lattice, strict, reject_prior)
        log_zs, d_first, d_steps = self._grad_log_z(emissions, lattices, prior=prior)
        return _nll(log_zs, len(emissions), reject_prior), _unary(d_first, d_steps, lattice.mask)

    # -- inference ----------------------------------------------------------------------------

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z over every scheme-valid tag sequence: ``(B,)``."""
        self._check(emissions, mask)
        return self._forward(self._scores(emissions), [self._free(mask)])

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``P(tag at t = k)`` under the model, ``(B, T, K)`` (0 at padding): the gradient of log Z.

        Kept in the graph (a loss on them trains the emissions and transitions) when ``emissions``
        require grad and grad mode is on; detached otherwise.
        """
        self._check(emissions, mask)
        _, d_first, d_steps = self._grad_log_z(emissions, [self._free(mask)])
        return _unary(d_first, d_steps, mask)

    def posterior(self, emissions: torch.Tensor, mask: torch.Tensor) -> Posterior:
        """Unary and pairwise marginals (:class:`Posterior`), detached: one autograd pass that serves
        both :func:`~sparse_ner.loop.selection.candidate_spans` (unary) and :meth:`span_probs`."""
        self._check(emissions, mask)
        _, d_first, d_steps = self._grad_log_z(emissions.detach(), [self._free(mask)])
        return Posterior(_unary(d_first, d_steps, mask), d_steps)

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> tuple[list[list[int]], torch.Tensor]:
        """The best scheme-valid tag sequence of each example (Viterbi): ``(paths, scores)``.

        ``paths``: one list of tag indices per example, of its length. ``scores`` ``(B,)``, detached:
        each path's unnormalized score (start + emissions + transitions + end; ``log P(path) + log Z``),
        the max-semiring forward whose gradient traced the path.
        """
        self._check(emissions, mask)
        best, d_first, d_steps = self._grad_log_z(emissions.detach(), [self._free(mask)], _max)
        paths = _unary(d_first, d_steps, mask).argmax(-1)  # (B, T): the gradient is 1 on the path
        lengths = mask.sum(1).tolist()
        return [p[:n] for p, n in zip(paths.tolist(), lengths)], best

    def span_probs(self, emissions: torch.Tensor, mask: torch.Tensor,
                   spans: Sequence[Sequence[TokenSpan]], posterior: Posterior | None = None) -> list[list[float]]:
        """Exact ``P(span is an entity of the sequence)`` for each given span.

        The posterior of a linear-chain CRF is a Markov chain, so the probability of the span's tag
        pattern (and, in BIO, of the next tag not continuing it) is a product of pairwise marginals
        divided by the unary marginals between them; both come from one autograd pass
        (:meth:`posterior`; pass its result as ``posterior`` when it is already computed for these
        ``emissions``). All spans of the batch are scored at once (padded to the longest span), with
        no per-span Python loop.
        """
        self._check(emissions, mask)
        if len(spans) != emissions.shape[0]:
            raise ValueError(f"spans has {len(spans)} lists for a batch of {emissions.shape[0]}")
        flat = [(b, s, e, label) for b, example in enumerate(spans) for s, e, label in example]
        if not flat:
            return [[] for _ in spans]
        if posterior is None:
            posterior = self.posterior(emissions, mask)
        elif posterior.unary.shape != emissions.shape:
            raise ValueError(f"posterior {tuple(posterior.unary.shape)} does not match emissions {tuple(emissions.shape)}")
        dev = emissions.device
        unary = posterior.unary.double().clamp_min(1e-300)  # (B, T, K)
        pair = posterior.pairwise.double().clamp_min(1e-300)  # (B, T-1, K, K)
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

    # -- the one forward algorithm and its gradient -------------------------------------------

    def _check(self, emissions: torch.Tensor, mask: torch.Tensor) -> None:
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions must be (B, T, {self.num_tags}), got {tuple(emissions.shape)}")
        if mask.shape != emissions.shape[:2]:
            raise ValueError(f"mask {tuple(mask.shape)} does not match emissions {tuple(emissions.shape)}")
        if not bool(mask[:, 0].all()):
            raise ValueError("every sequence needs at least one position, left-aligned (mask[:, 0] all true)")

    def _scores(self, emissions: torch.Tensor) -> torch.Tensor:
        """Per-token tag scores ``(B, T, K)``: the emissions, normalized per token for the softmax head."""
        return emissions if self.has_transitions else emissions.log_softmax(-1)

    def _free(self, mask: torch.Tensor, num_states: int | None = None) -> Lattice:
        return free_lattice(mask, self.tags, self.scheme, num_states=num_states)

    def _lattices(self, emissions: torch.Tensor, lattice: Lattice, strict: Lattice | None,
                  reject_prior: float) -> list[Lattice]:  # fmt: skip
        """``[free, lattice]`` (``+ [strict]`` when the reject prior is on), over ``lattice``'s states."""
        self._check(emissions, lattice.mask)
        free = self._free(lattice.mask, lattice.num_states)
        return [free, lattice, strict] if strict is not None and reject_prior != 0.0 else [free, lattice]

    def _potentials(self, scores: torch.Tensor, lattices: Sequence[Lattice], detach: bool = False,
                    prior: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """``first, steps, last`` of :func:`potentials` and the mask, for ``lattices`` (over the same
        states) stacked on the batch dimension: ``len(lattices) * B`` rows. ``prior`` ``(B, T, K)`` is
        added to the scores of every lattice after the first (the free one)."""
        lattice = lattices[0] if len(lattices) == 1 else Lattice.cat(lattices)
        if prior is not None and prior.shape != scores.shape:
            raise ValueError(f"prior {tuple(prior.shape)} does not match emissions {tuple(scores.shape)}")
        weighted = scores if prior is None else scores + prior.to(scores)  # (B, T, K)
        scores = scores if len(lattices) == 1 else torch.cat([scores] + [weighted] * (len(lattices) - 1))  # (n * B, T, K)
        params = (self.transitions, self.start_transitions, self.end_transitions)
        if detach:
            params = tuple(p.detach() for p in params)
        return (*potentials(scores, *params, lattice), lattice.mask)

    def _forward(self, scores: torch.Tensor, lattices: Sequence[Lattice], prior: torch.Tensor | None = None
                 ) -> torch.Tensor:  # fmt: skip
        """log Z of each of ``lattices`` in one forward pass: ``(len(lattices) * B,)``, differentiable
        (``prior`` on every lattice after the first, :meth:`_potentials`)."""
        return forward(*self._potentials(scores, lattices, prior=prior))

    def _grad_log_z(self, emissions: torch.Tensor, lattices: Sequence[Lattice], reduce: Reduce = _logsumexp,
                    prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """The one autograd-of-log-Z routine: the forward in ``reduce`` over ``lattices`` (the free
        lattice first) and the gradient of the free lattice's value by its potentials.

        Returns the values ``(len(lattices) * B,)`` and the gradients ``d_first (B, K)``,
        ``d_steps (B, T-1, K, K)``: in the log semiring the unary (at 0) and pairwise marginals; in
        the max semiring 1 on the Viterbi path. Kept in the graph (``create_graph``) when
        ``emissions`` require grad and grad mode is on, so a loss on the marginals trains through
        them; detached otherwise.
        """
        B, K = emissions.shape[0], self.num_tags
        keep = torch.is_grad_enabled() and emissions.requires_grad
        with torch.enable_grad():
            scores = self._scores(emissions if keep else emissions.detach())  # (B, T, K)
            first, steps, last, mask = self._potentials(scores, lattices, detach=not keep, prior=prior)
            if not keep:  # no graph (evaluation): leaves to differentiate by
                first.requires_grad_(True)
                steps.requires_grad_(True)
            values = forward(first, steps, last, mask, reduce)  # (n * B,)
            d_first, d_steps = torch.autograd.grad(values[:B].sum(), (first, steps), create_graph=keep,
                                                   allow_unused=True, materialize_grads=True)  # T == 1: no steps
        if not keep:
            values = values.detach()
        return values, d_first[:B, :K], d_steps[:B, :, :K, :K]


def _unary(d_first: torch.Tensor, d_steps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-position gradients ``(B, T, K)`` from ``d_first (B, K)`` and ``d_steps (B, T-1, K, K)``:
    a tag at ``t > 0`` enters through the steps into it. 0 at padding."""
    return torch.cat([d_first[:, None], d_steps.sum(2)], 1) * mask[..., None]  # (B, T, K)


def _nll(log_zs: torch.Tensor, B: int, reject_prior: float) -> torch.Tensor:
    """``log Z - log Z(consistent)`` from the stacked ``log_zs`` ``(n * B,)`` of :meth:`CRF._lattices`,
    the consistent term mixed with the strict one under ``reject_prior``: ``(B,)``."""
    log_z, log_z_consistent, *strict = log_zs.split(B)
    if strict:
        log_z_consistent = torch.logaddexp(log_z_consistent + math.log1p(-reject_prior),
                                           strict[0] + math.log(reject_prior))  # fmt: skip
    return log_z - log_z_consistent
