"""Training losses on top of the CRF: the partial-label NLL and the expected-entity-ratio penalty.

With only positive (accepted) answers, maximizing the marginal likelihood of the consistent sequences
puts no pressure toward ``O`` on unannotated tokens: labelling everything an entity is as consistent
as anything else. Effland & Collins (TACL 2021, "Partially Supervised Named Entity Recognition via the
Expected Entity Ratio Loss") add a penalty that keeps the expected fraction of entity tokens near a
prior ``ratio``::

    eer = max(0, |E[#tokens not O] / #tokens - ratio| - margin)

where the expectation uses the model's marginals (the autograd gradient of log Z, kept in the graph
with ``create_graph=True`` so the penalty itself can be trained through).
"""

from __future__ import annotations

import torch

from sparse_ner.core.lattice import Lattice
from sparse_ner.core.crf import CRF


def partial_nll(crf: CRF, emissions: torch.Tensor, lattice: Lattice) -> torch.Tensor:
    """Mean over the batch of ``-log P(tag sequences consistent with the annotation)``."""
    return crf.nll(emissions, lattice).mean()


def entity_token_ratio(crf: CRF, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Expected fraction of real tokens tagged as (part of) an entity: scalar. Differentiable (through
    :meth:`~sparse_ner.core.crf.CRF.marginals`) when ``emissions`` require grad and grad mode is on."""
    if crf.tags[0] != "O":
        raise ValueError(f"the tag inventory must start with 'O', got {crf.tags[:3]}...")
    return _ratio(crf.marginals(emissions, mask), mask)  # differentiable when the emissions require grad


def expected_entity_ratio_loss(crf: CRF, emissions: torch.Tensor, mask: torch.Tensor,
                               ratio: float = 0.15, margin: float = 0.05) -> torch.Tensor:
    """``max(0, |expected entity-token ratio - ratio| - margin)``: scalar."""
    _check_ratio(ratio, margin)
    return _hinge(entity_token_ratio(crf, emissions, mask), ratio, margin)


def entity_ratio_penalty(marginals: torch.Tensor, mask: torch.Tensor, ratio: float = 0.15,
                         margin: float = 0.05) -> torch.Tensor:  # fmt: skip
    """The same penalty from marginals ``(B, T, K)`` (tag 0 is ``O``) already computed, e.g. by
    :meth:`~sparse_ner.core.crf.CRF.nll_and_marginals` in the NLL's own forward pass: scalar."""
    _check_ratio(ratio, margin)
    return _hinge(_ratio(marginals, mask), ratio, margin)


def _ratio(marginals: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Expected share of real tokens not tagged ``O`` (tag 0) under ``marginals (B, T, K)``: scalar."""
    entity = (1.0 - marginals[..., 0]) * mask  # (B, T)
    return entity.sum() / mask.sum().clamp_min(1)


def _hinge(rho: torch.Tensor, ratio: float, margin: float) -> torch.Tensor:
    return torch.relu((rho - ratio).abs() - margin)


def _check_ratio(ratio: float, margin: float) -> None:
    if not 0.0 <= ratio <= 1.0 or margin < 0:
        raise ValueError(f"need 0 <= ratio <= 1 and margin >= 0, got ratio={ratio}, margin={margin}")
