"""torch-struct's counting identity: with all-zero potentials every allowed tag sequence scores 0, so
log Z is the log of the number of tag sequences the scheme allows, and each marginal is the share of
those sequences with that tag there. The counts come from enumerating every tag sequence and checking
it with the scheme's rules written out below (no code shared with ``sparse_ner.tags``)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sparse_ner.core.crf import CRF
from sparse_ner.tags import tag_names

MAX_SEQUENCES = 60_000  # K ** T enumerated per length


def allowed(tags: tuple[str, ...], scheme: str) -> bool:
    """The scheme's rules: BIO, ``I-X`` continues a ``B-X`` or ``I-X``; BIOES, an entity opened by
    ``B-X`` continues with ``I-X`` and closes with ``E-X`` before anything else, and ``S-X`` stands alone."""
    open_label = None  # the label of the entity still open before this tag
    for tag in tags:
        prefix, _, label = tag.partition("-")
        if scheme == "bio":
            if prefix == "I" and open_label != label:
                return False
            open_label = label if prefix in ("B", "I") else None
        elif open_label is not None:  # BIOES, inside an entity: only I or E of its label
            if prefix not in ("I", "E") or label != open_label:
                return False
            open_label = label if prefix == "I" else None
        else:  # BIOES, outside: O, B or S
            if prefix in ("I", "E"):
                return False
            open_label = label if prefix == "B" else None
    return scheme == "bio" or open_label is None


def settings() -> list[tuple[str, int, list[int]]]:
    """``(scheme, number of labels, lengths)``: every length from 6 down whose enumeration stays small."""
    out = []
    for scheme in ("bio", "bioes"):
        for num_labels in (1, 2, 3):
            K = len(tag_names([f"L{i}" for i in range(num_labels)], scheme))
            out.append((scheme, num_labels, [n for n in range(6, 0, -1) if K**n <= MAX_SEQUENCES]))
    return out


def zero_batch(crf: CRF, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """All-zero emissions ``(B, T, K)`` and a ragged mask ``(B, T)``."""
    T = max(lengths)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return torch.zeros(len(lengths), T, crf.num_tags, dtype=torch.float64), mask


@pytest.mark.parametrize("scheme,num_labels,lengths", settings())
@pytest.mark.parametrize("transitions", [True, False])
def test_log_z_of_zero_potentials_counts_allowed_sequences(scheme, num_labels, lengths, transitions):
    """log Z = log #allowed sequences (transitions zero); the softmax head normalizes each token, so
    there every sequence scores ``-T log K`` and log Z = log #allowed - T log K."""
    crf = CRF(tag_names([f"L{i}" for i in range(num_labels)], scheme), scheme, transitions=transitions).double()
    assert all(bool((p == 0).all()) for p in (crf.transitions, crf.start_transitions, crf.end_transitions))
    emissions, mask = zero_batch(crf, lengths)  # one ragged batch of every length
    got = crf.log_partition(emissions, mask)  # (B,)
    for b, n in enumerate(lengths):
        count = sum(allowed(seq, scheme) for seq in itertools.product(crf.tags, repeat=n))
        want = math.log(count) - (0.0 if transitions else n * math.log(crf.num_tags))
        assert got[b].item() == pytest.approx(want, abs=1e-9), (scheme, num_labels, n, count)


@pytest.mark.parametrize("scheme,num_labels,lengths", settings())
def test_marginals_of_zero_potentials_are_shares_of_allowed_sequences(scheme, num_labels, lengths):
    crf = CRF(tag_names([f"L{i}" for i in range(num_labels)], scheme), scheme).double()
    emissions, mask = zero_batch(crf, lengths)
    got = crf.marginals(emissions, mask)  # (B, T, K)
    for b, n in enumerate(lengths):
        seqs = [seq for seq in itertools.product(range(crf.num_tags), repeat=n)
                if allowed(tuple(crf.tags[k] for k in seq), scheme)]  # fmt: skip
        want = torch.zeros(n, crf.num_tags, dtype=torch.float64)
        for seq in seqs:
            want[torch.arange(n), torch.tensor(seq)] += 1.0
        torch.testing.assert_close(got[b, :n], want / len(seqs), atol=1e-9, rtol=0)
        assert got[b, n:].abs().sum() == 0


def test_known_counts():
    """Small counts by hand: BIO over one label, length 2: O O, O B, B O, B B, B I (I cannot start);
    BIOES over one label, length 2: O O, O S, S O, S S, B E."""
    for scheme, want in (("bio", 5), ("bioes", 5)):
        crf = CRF(tag_names(["X"], scheme), scheme).double()
        emissions, mask = zero_batch(crf, [2])
        assert crf.log_partition(emissions, mask).item() == pytest.approx(math.log(want), abs=1e-12)
