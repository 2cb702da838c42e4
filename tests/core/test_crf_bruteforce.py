"""The CRF and the partial-label loss against enumeration of every tag sequence.

The reference here shares no code with the package's dynamic programs: it enumerates all K^T tag
sequences with ``itertools.product``, checks scheme validity and annotation consistency with its own
small decoder, and sums scores with ``logsumexp``.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparse_ner.core.lattice import Annotation, build_lattice, strict_rejects
from sparse_ner.core.crf import CRF
from sparse_ner.tags import tag_names


# -- an independent reference ---------------------------------------------------------------------


def ref_valid(tags: list[str], scheme: str) -> bool:
    prev = "O"
    for tag in tags + ["O"]:  # "O" after the end closes any entity
        p, lab = (tag[0], tag[2:]) if tag != "O" else ("O", "")
        pp, plab = (prev[0], prev[2:]) if prev != "O" else ("O", "")
        open_ = pp in "BI"
        if scheme == "bio":
            if p == "I" and not (pp in "BI" and plab == lab):
                return False
        else:
            if open_ and not (p in "IE" and plab == lab):
                return False
            if not open_ and p in "IE":
                return False
        prev = tag
    return True


def ref_entities(tags: list[str], scheme: str) -> set[tuple[int, int, str]]:
    """Entities of a *valid* sequence."""
    ents, start = set(), None
    for t, tag in enumerate(tags):
        p, lab = (tag[0], tag[2:]) if tag != "O" else ("O", "")
        if p in "BS":
            start = t
        if scheme == "bio":
            nxt = tags[t + 1] if t + 1 < len(tags) else "O"
            if p in "BI" and nxt != f"I-{lab}":
                ents.add((start, t, lab))
        elif p in "ES":
            ents.add((start, t, lab))
    return ents


def ref_consistent(tags: list[str], scheme: str, ann: Annotation) -> bool:
    ents = ref_entities(tags, scheme)
    if not set(ann.accepted) <= ents or set(ann.rejected) & ents:
        return False
    if ann.complete:
        covered = {t for s, e, _ in ann.accepted for t in range(s, e + 1)}
        if any(tags[t] != "O" for t in range(len(tags)) if t not in covered):
            return False
    return True


def ref_paths(crf: CRF, emissions: torch.Tensor, n: int):
    """Yield ``(tag names, score)`` for every scheme-valid sequence of the first ``n`` positions."""
    K = crf.num_tags
    scores = emissions[:n] if crf.has_transitions else emissions[:n].log_softmax(-1)
    for path in itertools.product(range(K), repeat=n):
        tags = [crf.tags[k] for k in path]
        if not ref_valid(tags, crf.scheme):
            continue
        s = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
        s = s + sum(scores[t, k] for t, k in enumerate(path))
        s = s + sum(crf.transitions[a, b] for a, b in zip(path, path[1:]))
        yield tags, path, float(s.detach())


def logsumexp(xs: list[float]) -> float:
    if not xs:
        return -math.inf
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


# -- fixtures -------------------------------------------------------------------------------------


def make_crf(labels: list[str], scheme: str, transitions: bool = True, seed: int = 0) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(tag_names(labels, scheme), scheme, transitions=transitions).double()
    if transitions:
        with torch.no_grad():
            crf.transitions.normal_()
            crf.start_transitions.normal_()
            crf.end_transitions.normal_()
    return crf


def random_annotation(rng: random.Random, n: int, labels: list[str], scheme: str, crf: CRF, emissions) -> Annotation:
    """A random annotation that some valid sequence satisfies (taken from a random valid path)."""
    paths = [tags for tags, _, _ in ref_paths(crf, emissions, n)]
    gold = rng.choice(paths)
    ents = sorted(ref_entities(gold, scheme))
    accepted = [e for e in ents if rng.random() < 0.5]
    candidates = [(s, e, lab) for s in range(n) for e in range(s, n) for lab in labels]
    rejected = [c for c in candidates if c not in ents and rng.random() < 0.3]
    return Annotation(n, accepted, rejected, complete=rng.random() < 0.25)


CASES = [(["PER", "LOC"], "bio"), (["A", "B", "C", "D"], "bio"), (["PER", "LOC"], "bioes")]


def ragged(crf: CRF, lengths: list[int], seed: int = 0):
    torch.manual_seed(seed)
    T = max(lengths)
    emissions = torch.randn(len(lengths), T, crf.num_tags, dtype=torch.float64) * 2
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return emissions, mask


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels,scheme", CASES)
@pytest.mark.parametrize("transitions", [True, False])
def test_log_partition_matches_enumeration(labels, scheme, transitions):
    crf = make_crf(labels, scheme, transitions)
    lengths = [4, 1, 3] if len(crf.tags) > 5 else [5, 1, 3, 2]
    emissions, mask = ragged(crf, lengths)
    got = crf.log_partition(emissions, mask)
    for b, n in enumerate(lengths):
        want = logsumexp([s for _, _, s in ref_paths(crf, emissions[b], n)])
        assert got[b].item() == pytest.approx(want, abs=1e-8)


@pytest.mark.parametrize("labels,scheme", CASES)
def test_viterbi_matches_enumeration(labels, scheme):
    crf = make_crf(labels, scheme, seed=3)
    lengths = [4, 2, 3] if len(crf.tags) > 5 else [5, 1, 4]
    emissions, mask = ragged(crf, lengths, seed=3)
    got, _ = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        _, best, _ = max(ref_paths(crf, emissions[b], n), key=lambda x: x[2])
        assert got[b] == list(best)


@pytest.mark.parametrize("labels,scheme", CASES)
@pytest.mark.parametrize("transitions", [True, False])
def test_viterbi_scores_match_enumeration(labels, scheme, transitions):
    """``decode`` also gives each best path's unnormalized score: the brute-force maximum."""
    crf = make_crf(labels, scheme, transitions, seed=14)
    lengths = [4, 1, 3] if len(crf.tags) > 5 else [5, 1, 4]
    emissions, mask = ragged(crf, lengths, seed=14)
    emissions.requires_grad_(True)
    paths, scores = crf.decode(emissions, mask)
    assert scores.shape == (len(lengths),) and not scores.requires_grad
    for b, n in enumerate(lengths):
        _, best, score = max(ref_paths(crf, emissions[b], n), key=lambda x: x[2])
        assert paths[b] == list(best)
        assert scores[b].item() == pytest.approx(score, abs=1e-9)


@pytest.mark.parametrize("labels,scheme", CASES)
@pytest.mark.parametrize("transitions", [True, False])
def test_an_o_bias_reweights_each_sequence_by_exp_bias_per_o_word(labels, scheme, transitions):
    """``Tagger.o_bias``: ``b`` added to the emission of ``O`` gives the distribution over sequences
    reweighted by ``exp(b * #O)``: its Viterbi path and marginals against enumeration of the unbiased scores."""
    crf = make_crf(labels, scheme, transitions, seed=5)
    lengths = [4, 2] if len(crf.tags) > 5 else [5, 3]
    emissions, mask = ragged(crf, lengths, seed=5)
    is_o = torch.tensor([tag == "O" for tag in crf.tags], dtype=torch.float64)  # (K,)
    for bias in (-1.0, 1.5, 4.0):
        biased = emissions + bias * is_o
        paths, _ = crf.decode(biased, mask)
        got = crf.marginals(biased, mask)
        for b, n in enumerate(lengths):
            weighted = [(path, s + bias * sum(tag == "O" for tag in tags)) for tags, path, s in ref_paths(crf, emissions[b], n)]
            assert paths[b] == list(max(weighted, key=lambda x: x[1])[0])
            log_z = logsumexp([s for _, s in weighted])
            want = torch.zeros(n, crf.num_tags, dtype=torch.float64)
            for path, s in weighted:
                for t, k in enumerate(path):
                    want[t, k] += math.exp(s - log_z)
            torch.testing.assert_close(got[b, :n], want, atol=1e-8, rtol=0)


@pytest.mark.parametrize("labels,scheme", CASES)
@pytest.mark.parametrize("transitions", [True, False])
def test_marginals_match_enumeration(labels, scheme, transitions):
    crf = make_crf(labels, scheme, transitions, seed=1)
    lengths = [3, 4, 1] if len(crf.tags) > 5 else [5, 2]
    emissions, mask = ragged(crf, lengths, seed=1)
    got = crf.marginals(emissions, mask)
    for b, n in enumerate(lengths):
        paths = list(ref_paths(crf, emissions[b], n))
        log_z = logsumexp([s for *_, s in paths])
        want = torch.zeros(n, crf.num_tags, dtype=torch.float64)
        for _, path, s in paths:
            for t, k in enumerate(path):
                want[t, k] += math.exp(s - log_z)
        torch.testing.assert_close(got[b, :n], want, atol=1e-8, rtol=0)
        assert got[b, n:].abs().sum() == 0


@pytest.mark.parametrize("labels,scheme", CASES)
@pytest.mark.parametrize("transitions", [True, False])
def test_partial_nll_matches_enumeration(labels, scheme, transitions):
    """Random accepts, several (overlapping, nested) rejects, complete and sparse, ragged batch."""
    crf = make_crf(labels, scheme, transitions, seed=2)
    rng = random.Random(7)
    for trial in range(4):
        lengths = [rng.randint(1, 4 if crf.num_tags > 5 else 5) for _ in range(3)]
        emissions, mask = ragged(crf, lengths, seed=trial)
        anns = [random_annotation(rng, n, labels, scheme, crf, emissions[b]) for b, n in enumerate(lengths)]
        got = crf.nll(emissions, build_lattice(anns, crf.tags, scheme))
        for b, (n, ann) in enumerate(zip(lengths, anns)):
            paths = list(ref_paths(crf, emissions[b], n))
            log_z = logsumexp([s for *_, s in paths])
            log_c = logsumexp([s for tags, _, s in paths if ref_consistent(tags, scheme, ann)])
            assert got[b].item() == pytest.approx(log_z - log_c, abs=1e-7), (ann, trial)


@pytest.mark.parametrize("labels,scheme", CASES)
@pytest.mark.parametrize("lam", [0.3, 0.9])
def test_reject_prior_mixture_matches_enumeration(labels, scheme, lam):
    """``log Z - log sum_y exp(score) [consistent] ((1 - lam) + lam [no rejected span is an entity
    of a label not accepted on it])``, over random annotations with several rejects."""
    crf = make_crf(labels, scheme, seed=4)
    rng = random.Random(11)
    for trial in range(3):
        lengths = [rng.randint(1, 4 if crf.num_tags > 5 else 5) for _ in range(3)]
        emissions, mask = ragged(crf, lengths, seed=10 + trial)
        anns = [random_annotation(rng, n, labels, scheme, crf, emissions[b]) for b, n in enumerate(lengths)]
        both = build_lattice(anns + [strict_rejects(a, labels) for a in anns], crf.tags, scheme)
        lattice, strict = both.split(len(anns))
        got = crf.nll(emissions, lattice, strict, lam)
        assert torch.equal(crf.nll(emissions, lattice, strict, 0.0), crf.nll(emissions, lattice))
        for b, (n, ann) in enumerate(zip(lengths, anns)):
            paths = list(ref_paths(crf, emissions[b], n))
            log_z = logsumexp([s for *_, s in paths])
            terms = []
            for tags, _, s in paths:
                if not ref_consistent(tags, scheme, ann):
                    continue
                ents = ref_entities(tags, scheme)
                other = any((rs, re, y) in ents and (rs, re, y) not in ann.accepted for rs, re, _ in ann.rejected
                            for y in labels)  # fmt: skip
                terms.append(s + math.log((1 - lam) + (0 if other else lam)))
            assert got[b].item() == pytest.approx(log_z - logsumexp(terms), abs=1e-7), (ann, trial)


@pytest.mark.parametrize("labels,scheme", CASES)
@pytest.mark.parametrize("lam", [0.0, 0.4])
def test_a_prior_weights_the_consistent_taggings_by_enumeration(labels, scheme, lam):
    """``prior`` = log q: ``log Z - log sum_{y consistent} exp(score(y)) prod_t q_t(y_t)`` (with the
    reject prior's mixture when ``lam`` > 0), the free ``log Z`` untouched; the fused pass gives the same
    NLL and the free model's marginals; a uniform prior shifts the NLL by a constant only."""
    crf = make_crf(labels, scheme, seed=21)
    rng = random.Random(23)
    for trial in range(3):
        lengths = [rng.randint(1, 4 if crf.num_tags > 5 else 5) for _ in range(3)]
        emissions, mask = ragged(crf, lengths, seed=30 + trial)
        torch.manual_seed(40 + trial)
        log_q = torch.rand(len(lengths), max(lengths), crf.num_tags, dtype=torch.float64).clamp_min(1e-3).log()
        anns = [random_annotation(rng, n, labels, scheme, crf, emissions[b]) for b, n in enumerate(lengths)]
        both = build_lattice(anns + [strict_rejects(a, labels) for a in anns], crf.tags, scheme)
        lattice, strict = both.split(len(anns))
        got = crf.nll(emissions, lattice, strict, lam, prior=log_q)
        fused, marg = crf.nll_and_marginals(emissions, lattice, strict, lam, prior=log_q)
        assert torch.allclose(fused, got, atol=1e-7)
        assert torch.allclose(marg, crf.marginals(emissions, mask), atol=1e-7)
        for b, (n, ann) in enumerate(zip(lengths, anns)):
            paths = list(ref_paths(crf, emissions[b], n))
            log_z = logsumexp([s for *_, s in paths])
            terms = []
            for tags, path, s in paths:
                if not ref_consistent(tags, scheme, ann):
                    continue
                ents = ref_entities(tags, scheme)
                other = any((rs, re, y) in ents and (rs, re, y) not in ann.accepted for rs, re, _ in ann.rejected
                            for y in labels)  # fmt: skip
                weight = sum(log_q[b, t, k].item() for t, k in enumerate(path))
                terms.append(s + weight + math.log((1 - lam) + (0 if other else lam)))
            assert got[b].item() == pytest.approx(log_z - logsumexp(terms), abs=1e-7), (ann, trial)
        flat = torch.full_like(log_q, -1.5)
        shift = torch.tensor(lengths, dtype=torch.float64) * 1.5
        assert torch.allclose(crf.nll(emissions, lattice, strict, lam, prior=flat),
                              crf.nll(emissions, lattice, strict, lam) + shift, atol=1e-7)  # fmt: skip
    with pytest.raises(ValueError, match="prior"):
        crf.nll(emissions, lattice, prior=log_q[:, :1])


@pytest.mark.parametrize("scheme", ["bio", "bioes"])
def test_overlapping_and_nested_rejects_are_exact(scheme):
    """Rejects sharing tokens, starts and ends: the exact answer is not a product of single terms."""
    labels = ["PER", "LOC"]
    crf = make_crf(labels, scheme, seed=5)
    n = 5 if scheme == "bio" else 4
    emissions, mask = ragged(crf, [n], seed=5)
    rejected = [(0, 2, "PER"), (0, 1, "PER"), (1, 2, "PER"), (1, 3, "PER"), (2, 2, "LOC"), (1, 1, "PER")]
    rejected = [r for r in rejected if r[1] < n]
    ann = Annotation(n, [(3, 3, "LOC")] if n > 4 else [], rejected)
    got = crf.nll(emissions, build_lattice([ann], crf.tags, scheme))[0].item()
    paths = list(ref_paths(crf, emissions[0], n))
    log_z = logsumexp([s for *_, s in paths])
    log_c = logsumexp([s for tags, _, s in paths if ref_consistent(tags, scheme, ann)])
    assert got == pytest.approx(log_z - log_c, abs=1e-8)
    # and the independent-factor approximation would be different: it is not what we compute
    indep = -sum(math.log1p(-math.exp(logsumexp([s for tags, _, s in paths if r in ref_entities(tags, scheme)]) - log_z))
                 for r in rejected)
    assert abs(indep - (log_z - log_c)) > 1e-3


@pytest.mark.parametrize("labels,scheme", CASES)
@pytest.mark.parametrize("transitions", [True, False])
def test_complete_annotation_gives_ordinary_crf_nll(labels, scheme, transitions):
    crf = make_crf(labels, scheme, transitions, seed=4)
    lengths = [4, 2, 3]
    emissions, mask = ragged(crf, lengths, seed=4)
    rng = random.Random(1)
    anns, want = [], []
    for b, n in enumerate(lengths):
        paths = list(ref_paths(crf, emissions[b], n))
        log_z = logsumexp([s for *_, s in paths])
        tags, _, score = rng.choice(paths)
        anns.append(Annotation(n, sorted(ref_entities(tags, scheme)), [], complete=True))
        want.append(log_z - score)
    got = crf.nll(emissions, build_lattice(anns, crf.tags, scheme))
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), atol=1e-8, rtol=0)


@pytest.mark.parametrize("labels,scheme", CASES)
def test_no_annotation_gives_zero_loss(labels, scheme):
    crf = make_crf(labels, scheme)
    emissions, mask = ragged(crf, [5, 1, 3])
    got = crf.nll(emissions, build_lattice([Annotation(n) for n in (5, 1, 3)], crf.tags, scheme))
    torch.testing.assert_close(got, torch.zeros(3, dtype=torch.float64), atol=1e-9, rtol=0)


@pytest.mark.parametrize("labels,scheme", CASES)
def test_an_unanswered_text_with_a_prior_is_weighted_over_every_tagging(labels, scheme):
    """An unanswered text (``--data.unlabeled``) with a teacher's ``log q``: ``log Z - log sum_y exp(score(y))
    prod_t q_t(y_t)`` over every valid tagging, which is not zero (without a prior it is)."""
    crf = make_crf(labels, scheme, seed=8)
    lengths = [4, 1, 3]
    emissions, _ = ragged(crf, lengths, seed=9)
    torch.manual_seed(10)
    log_q = torch.rand(len(lengths), max(lengths), crf.num_tags, dtype=torch.float64).clamp_min(1e-3).log()
    got = crf.nll(emissions, build_lattice([Annotation(n) for n in lengths], crf.tags, scheme), prior=log_q)
    for b, n in enumerate(lengths):
        paths = list(ref_paths(crf, emissions[b], n))
        log_z = logsumexp([s for *_, s in paths])
        weighted = logsumexp([s + sum(log_q[b, t, k].item() for t, k in enumerate(path)) for _, path, s in paths])
        assert got[b].item() == pytest.approx(log_z - weighted, abs=1e-7)
        assert got[b].item() > 1e-3


@pytest.mark.parametrize("labels,scheme", CASES)
def test_span_probs_match_enumeration(labels, scheme):
    crf = make_crf(labels, scheme, seed=6)
    lengths = [4, 3] if crf.num_tags > 5 else [5, 3]
    emissions, mask = ragged(crf, lengths, seed=6)
    spans = [[(s, e, lab) for s in range(n) for e in range(s, min(n, s + 3)) for lab in labels] for n in lengths]
    got = crf.span_probs(emissions, mask, spans)
    posterior = crf.posterior(emissions, mask)
    shared = crf.span_probs(emissions, mask, spans, posterior)  # the posterior computed once, passed in
    for b, n in enumerate(lengths):
        paths = list(ref_paths(crf, emissions[b], n))
        log_z = logsumexp([s for *_, s in paths])
        for span, p, q in zip(spans[b], got[b], shared[b]):
            want = sum(math.exp(s - log_z) for tags, _, s in paths if span in ref_entities(tags, scheme))
            assert p == pytest.approx(want, abs=1e-8) and q == pytest.approx(want, abs=1e-8), span
        for t in range(n):  # the posterior itself: unary and pairwise marginals by enumeration
            for k in range(crf.num_tags):
                want = sum(math.exp(s - log_z) for _, path, s in paths if path[t] == k)
                assert float(posterior.unary[b, t, k]) == pytest.approx(want, abs=1e-8)
                if t + 1 < n:
                    for j in range(crf.num_tags):
                        want = sum(math.exp(s - log_z) for _, path, s in paths if path[t] == k and path[t + 1] == j)
                        assert float(posterior.pairwise[b, t, k, j]) == pytest.approx(want, abs=1e-8)
        assert float(posterior.unary[b, n:].abs().sum()) == 0.0  # padding
        assert float(posterior.pairwise[b, n - 1 :].abs().sum()) == 0.0  # steps into padding
    with pytest.raises(ValueError, match="does not match"):
        crf.span_probs(emissions[:1], mask[:1], spans[:1], posterior)


def test_gradients_are_finite_and_nonzero():
    crf = make_crf(["PER", "LOC"], "bio")
    emissions, mask = ragged(crf, [5, 2, 4])
    emissions.requires_grad_(True)
    anns = [Annotation(5, [(0, 1, "PER")], [(3, 4, "LOC"), (3, 3, "LOC")]), Annotation(2, [], [(0, 1, "PER")]),
            Annotation(4, [(2, 2, "LOC")], [], complete=True)]
    crf.nll(emissions, build_lattice(anns, crf.tags, "bio")).sum().backward()
    assert torch.isfinite(emissions.grad).all()
    assert emissions.grad[:, :2].abs().sum() > 0
    assert emissions.grad[1, 2:].abs().sum() == 0  # padding gets no gradient
    assert crf.transitions.grad.abs().sum() > 0


def test_contradictory_annotation_is_refused():
    tags = tag_names(["PER"], "bio")
    with pytest.raises(ValueError, match="both accepted and rejected"):
        build_lattice([Annotation(3, [(0, 1, "PER")], [(0, 1, "PER")])], tags, "bio")
    with pytest.raises(ValueError, match="overlaps"):
        build_lattice([Annotation(3, [(0, 1, "PER"), (1, 2, "PER")], [])], tags, "bio")
    with pytest.raises(ValueError, match="outside"):
        build_lattice([Annotation(3, [(2, 3, "PER")], [])], tags, "bio")


def test_shape_errors_name_the_shapes():
    crf = make_crf(["PER"], "bio")
    with pytest.raises(ValueError, match=r"\(B, T, 3\)"):
        crf.log_partition(torch.zeros(2, 4, 5, dtype=torch.float64), torch.ones(2, 4, dtype=torch.bool))


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_random_shapes_and_annotations(data):
    """Hypothesis draws the scheme, head, lengths and annotation; the reference decides."""
    scheme = data.draw(st.sampled_from(["bio", "bioes"]))
    transitions = data.draw(st.booleans())
    labels = ["X", "Y"] if scheme == "bioes" else data.draw(st.sampled_from([["X"], ["X", "Y"], ["X", "Y", "Z"]]))
    crf = make_crf(labels, scheme, transitions, seed=data.draw(st.integers(0, 1000)))
    cap = 4 if crf.num_tags > 5 else 5
    lengths = data.draw(st.lists(st.integers(1, cap), min_size=1, max_size=3))
    emissions, _ = ragged(crf, lengths, seed=data.draw(st.integers(0, 1000)))
    rng = random.Random(data.draw(st.integers(0, 1000)))
    anns = [random_annotation(rng, n, labels, scheme, crf, emissions[b]) for b, n in enumerate(lengths)]
    got = crf.nll(emissions, build_lattice(anns, crf.tags, scheme))
    for b, (n, ann) in enumerate(zip(lengths, anns)):
        paths = list(ref_paths(crf, emissions[b], n))
        log_z = logsumexp([s for *_, s in paths])
        log_c = logsumexp([s for tags, _, s in paths if ref_consistent(tags, scheme, ann)])
        assert got[b].item() == pytest.approx(log_z - log_c, abs=1e-7)


@pytest.mark.parametrize("transitions", [True, False])
def test_entity_ratio_matches_enumeration_and_trains(transitions):
    from sparse_ner.core.losses import entity_token_ratio, expected_entity_ratio_loss

    crf = make_crf(["PER", "LOC"], "bio", transitions, seed=8)
    lengths = [5, 2]
    emissions, mask = ragged(crf, lengths, seed=8)
    emissions.requires_grad_(True)
    got = entity_token_ratio(crf, emissions, mask)
    expected_entities = 0.0
    for b, n in enumerate(lengths):
        paths = list(ref_paths(crf, emissions[b], n))
        log_z = logsumexp([s for *_, s in paths])
        expected_entities += sum(math.exp(s - log_z) * sum(t != "O" for t in tags) for tags, _, s in paths)
    assert got.item() == pytest.approx(expected_entities / sum(lengths), abs=1e-8)
    # the penalty is differentiable through the marginals, and its gradient lowers it
    loss = expected_entity_ratio_loss(crf, emissions, mask, ratio=0.0, margin=0.0)
    (grad,) = torch.autograd.grad(loss, emissions)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    lower = expected_entity_ratio_loss(crf, (emissions - 0.1 * grad).detach(), mask, ratio=0.0, margin=0.0)
    assert lower.item() < loss.item()


def test_marginals_keep_the_graph_only_when_emissions_require_grad():
    """One return type: a tensor, in the graph when the caller trains through it, detached otherwise."""
    crf = make_crf(["PER", "LOC"], "bio", seed=15)
    emissions, mask = ragged(crf, [5, 2], seed=15)
    assert not crf.marginals(emissions, mask).requires_grad
    emissions.requires_grad_(True)
    marg = crf.marginals(emissions, mask)  # (B, T, K)
    assert marg.requires_grad
    with torch.no_grad():
        assert not crf.marginals(emissions, mask).requires_grad
    (g_em, g_tr) = torch.autograd.grad(marg[:, :, 0].sum(), [emissions, crf.transitions])
    assert g_em.abs().sum() > 0 and g_tr.abs().sum() > 0
    torch.testing.assert_close(marg.detach(), crf.marginals(emissions.detach(), mask), atol=1e-12, rtol=0)


@pytest.mark.parametrize("scheme", ["bio", "bioes"])
def test_inference_on_one_token_batches(scheme):
    """A batch of one-token texts has no transitions at all: decode, marginals and span probs still work."""
    crf = make_crf(["PER", "LOC"], scheme, seed=9)
    emissions, mask = ragged(crf, [1, 1], seed=9)
    for b in range(2):
        _, best, _ = max(ref_paths(crf, emissions[b], 1), key=lambda x: x[2])
        assert crf.decode(emissions, mask)[0][b] == list(best)
    probs = crf.span_probs(emissions, mask, [[(0, 0, "PER")], [(0, 0, "LOC")]])
    paths = list(ref_paths(crf, emissions[0], 1))
    log_z = logsumexp([s for *_, s in paths])
    want = sum(math.exp(s - log_z) for tags, _, s in paths if (0, 0, "PER") in ref_entities(tags, scheme))
    assert probs[0][0] == pytest.approx(want, abs=1e-8)


@pytest.mark.parametrize("labels,scheme", CASES)
@pytest.mark.parametrize("transitions", [True, False])
def test_nll_and_marginals_from_one_pass_match_enumeration(labels, scheme, transitions):
    """The fused pass (rejects widen the lattice's state space): its NLL is the NLL, its marginals
    are the free model's tag probabilities by enumeration, and the entity-ratio penalty on them
    has the gradient of the penalty computed by its own forward pass."""
    from sparse_ner.core.losses import entity_ratio_penalty, expected_entity_ratio_loss

    crf = make_crf(labels, scheme, transitions, seed=12)
    rng = random.Random(13)
    lengths = [rng.randint(1, 4 if crf.num_tags > 5 else 5) for _ in range(3)]
    emissions, mask = ragged(crf, lengths, seed=12)
    emissions.requires_grad_(True)
    anns = [random_annotation(rng, n, labels, scheme, crf, emissions[b].detach()) for b, n in enumerate(lengths)]
    lattice = build_lattice(anns, crf.tags, scheme)
    nll, marg = crf.nll_and_marginals(emissions, lattice)
    assert torch.allclose(nll, crf.nll(emissions, lattice), atol=1e-6)
    for b, n in enumerate(lengths):
        paths = list(ref_paths(crf, emissions[b].detach(), n))
        log_z = logsumexp([s for *_, s in paths])
        for t in range(n):
            for k, tag in enumerate(crf.tags):
                p = sum(math.exp(s - log_z) for tags, _, s in paths if tags[t] == tag)
                assert marg[b, t, k].item() == pytest.approx(p, abs=1e-6)
        assert marg[b, n:].abs().sum() == 0
    fused = nll.mean() + entity_ratio_penalty(marg, mask, ratio=0.0, margin=0.0)
    separate = crf.nll(emissions, lattice).mean() + expected_entity_ratio_loss(crf, emissions, mask, 0.0, 0.0)
    (g_fused,) = torch.autograd.grad(fused, emissions)
    (g_sep,) = torch.autograd.grad(separate, emissions)
    assert fused.item() == pytest.approx(separate.item(), abs=1e-6)
    assert g_sep.abs().sum() > 0 and torch.allclose(g_fused, g_sep, atol=1e-6)
    # without a graph (evaluation) the same values come back, detached
    with torch.no_grad():
        nll2, marg2 = crf.nll_and_marginals(emissions, lattice)
    assert not nll2.requires_grad and torch.allclose(nll2, nll) and torch.allclose(marg2, marg)
