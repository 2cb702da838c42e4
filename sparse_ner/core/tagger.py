"""The tagger network: encoder -> dropout -> linear emissions -> CRF.

A plain :class:`torch.nn.Module`; training loops live in :mod:`sparse_ner.training.module`; its options
are declared once, in :class:`TaggerConfig` (training, the annotation loop and its simulation build
their tagger from one; ``TaggerModule``'s ``--model.*`` options repeat its fields, checked by
``tests/core/test_config.py``). A batch is the dict produced by
:meth:`Tagger.make_batch` (also what the data module's collate returns; :func:`make_batch` is the
same without the tagger):

- ``"inputs"``: the encoder's tensors (``encoder.collate``), including ``"word_mask"`` (B, T) bool;
- ``"lattice"``: the :class:`~sparse_ner.core.lattice.Lattice` of what the annotation allows (training);
- ``"gold"``: per example, the accepted token spans ``(start, end_inclusive, label)`` (evaluation);
- ``"rejected"``, ``"complete"``: per example, the rejected token spans and whether the annotation is
  complete (evaluation on binary answers: :class:`~sparse_ner.core.metrics.EntityF1`).
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Literal, Mapping, NamedTuple, Sequence

import torch
from torch import nn

from sparse_ner.core.crf import CRF
from sparse_ner.data.example import Example
from sparse_ner.tags import Scheme, TokenSpan, decode_tags, labels_of, split_tag, tag_names



SCHEMES = ("bio", "bioes")
HEAD_OPTIONS = ("dropout", "transitions", "entity_ratio", "ratio_margin", "ratio_weight", "factored", "reject_prior",
                "o_bias")


@dataclass(frozen=True)
class TaggerConfig:
    """How to build a :class:`~sparse_ner.core.tagger.Tagger` (besides its labels and vocabulary).

    Args:
        encoder: ``"small"`` (word + character encoder, vocabulary from the training texts), ``"minilm"``
            (the packaged MiniLM) or the path of a Hugging Face model folder.
        encoder_options: keyword arguments of the encoder's builder (e.g. ``{"hidden": 128}``).
        scheme: tag scheme, ``bio`` or ``bioes``.
        dropout: dropout before the emission layer.
        transitions: CRF transition scores; ``False`` gives a softmax head with the same loss.
        entity_ratio: expected share of entity tokens for the entity-ratio penalty (``None``: off;
            ``"auto"``: measured on the training data by ``TaggerModule``, see
            :mod:`sparse_ner.training.entity_ratio`; a tagger is built with a number).
        ratio_margin: tolerance of the entity-ratio penalty.
        ratio_weight: weight of the entity-ratio penalty.
        factored: add shared entity-ness and per-label scores to the emissions (see ``Tagger``).
        reject_prior: how much likelier a rejected span is no entity at all than an entity of another
            label, in [0, 1) (0: rejects only rule out their own label; see ``Tagger``).
        o_bias: added to the score of ``O`` at every word when predicting (not in training): a prior
            shift towards fewer entities (``"auto"``: tuned on the dev set after training by
            :mod:`sparse_ner.training.o_bias`; a tagger built before that has 0).
    """

    encoder: str = "small"
    encoder_options: dict[str, Any] | None = None
    scheme: Scheme = "bio"
    dropout: float = 0.2
    transitions: bool = True
    entity_ratio: float | Literal["auto"] | None = None
    ratio_margin: float = 0.05
    ratio_weight: float = 1.0
    factored: bool = False
    reject_prior: float = 0.0
    o_bias: float | Literal["auto"] = 0.0

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if not 0.0 <= self.reject_prior < 1.0:
            raise ValueError(f"reject_prior must be in [0, 1), got {self.reject_prior}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def parse(cls, value: "TaggerConfig | Mapping[str, Any] | str | None") -> "TaggerConfig":
        """``value`` as a config: a config is kept, a mapping is checked (an unknown key is a
        ``ValueError`` naming the known ones), a string is an encoder name, ``None`` the defaults."""
        if isinstance(value, TaggerConfig):
            return value
        if value is None:
            return cls()
        if isinstance(value, str):
            return cls(encoder=value)
        if not isinstance(value, Mapping):
            raise TypeError(f"a tagger config is a TaggerConfig, a mapping or an encoder name, not {type(value).__name__}")
        unknown = set(value) - set(cls.names())
        if unknown:
            raise ValueError(f"unknown tagger options {sorted(unknown)}; expected some of {list(cls.names())}")
        return cls(**value)

    def head_options(self) -> dict[str, Any]:
        """The keyword options of :class:`~sparse_ner.core.tagger.Tagger` besides its scheme."""
        options = {name: getattr(self, name) for name in HEAD_OPTIONS}
        if options["o_bias"] == "auto":  # tuned after training; until then none
            options["o_bias"] = 0.0
        return options

    def as_dict(self) -> dict[str, Any]:
        """Every option (JSON- and YAML-safe)."""
        return dataclasses.asdict(self)

    def build(self, labels: Iterable[str], vocab_words: Iterable[list[str]] | None = None) -> Tagger:
        """A new tagger over ``labels``: the encoder from :func:`~sparse_ner.core.encoders.build_encoder`
        (the small encoder's vocabulary from ``vocab_words``), then the head."""
        from sparse_ner.core.encoders import build_encoder

        if self.entity_ratio == "auto":
            raise ValueError("entity_ratio 'auto' is measured on the training data when training "
                             "(sparse_ner.training.entity_ratio); to build a tagger directly give a number or None")  # fmt: skip
        encoder = build_encoder(self.encoder, vocab_words=vocab_words, **(self.encoder_options or {}))
        return Tagger(encoder, list(labels), self.scheme, **self.head_options())


class ScoredSpan(NamedTuple):
    """A predicted entity: token offsets (``end`` inclusive), label, and ``P(span is an entity)``."""

    start: int
    end: int
    label: str
    score: float


def make_batch(encoder: Any, examples: Sequence[Example], tags: list[str] | None = None, scheme: Scheme = "bio",
               strict_rejects: bool = False, features: Sequence[dict] | None = None) -> dict:  # fmt: skip
    """Encoder tensors for ``examples``, plus their lattice when ``tags`` is given, and gold spans.

    ``strict_rejects`` adds ``"strict_lattice"`` (when the batch has rejects): the same annotations
    with every rejected span ruled out as an entity of any label (for ``Tagger(reject_prior=...)``).
    ``features``: ``encoder.featurize(ex.words)`` of each example, when the caller keeps them.
    With ``tags``, examples that carry a teacher's ``prior`` (:mod:`sparse_ner.training.teacher`) give
    ``"prior"`` ``(B, T, K)`` (0 for the others and at padding), which :meth:`Tagger.loss` passes to the CRF.
    """
    from sparse_ner.core.lattice import annotation_of, build_lattice, strict_rejects as widen

    if features is None:
        features = [encoder.featurize(ex.words) for ex in examples]
    elif len(features) != len(examples):
        raise ValueError(f"{len(features)} features for {len(examples)} examples")
    inputs = encoder.collate(list(features))
    batch: dict[str, Any] = {"inputs": inputs, "gold": [[s.key for s in ex.accepted] for ex in examples],
                             "rejected": [[s.key for s in ex.rejected] for ex in examples],
                             "complete": [ex.complete for ex in examples]}  # fmt: skip
    if tags is not None:
        T = inputs["word_mask"].shape[1]
        if any(ex.prior is not None for ex in examples):  # a teacher's log q; 0 (no weighting) elsewhere
            prior = torch.zeros(len(examples), T, len(tags))  # (B, T, K)
            for b, ex in enumerate(examples):
                if ex.prior is not None:
                    if tuple(ex.prior.shape) != (len(ex), len(tags)):
                        raise ValueError(f"prior {tuple(ex.prior.shape)} does not fit a text of {len(ex)} words "
                                         f"and {len(tags)} tags")  # fmt: skip
                    prior[b, : len(ex)] = torch.as_tensor(ex.prior)
            batch["prior"] = prior
        anns = [annotation_of(ex) for ex in examples]
        if strict_rejects and any(a.rejected for a in anns):
            labels = labels_of(tags)
            both = build_lattice(anns + [widen(a, labels) for a in anns], tags, scheme, length=T)
            batch["lattice"], batch["strict_lattice"] = both.split(len(anns))
        else:
            batch["lattice"] = build_lattice(anns, tags, scheme, length=T)
    return batch


@dataclass
class BatchBuilder:
    """A tagger's ``examples -> batch`` (:meth:`Tagger.make_batch`), picklable for DataLoader workers:
    holds the encoder, the tags and whether the tagger's ``reject_prior`` needs the strict lattice."""

    encoder: Any
    tags: list[str]
    scheme: Scheme
    strict_rejects: bool

    def __call__(self, examples: Sequence[Example], features: Sequence[dict] | None = None) -> dict:
        return make_batch(self.encoder, examples, self.tags, self.scheme, self.strict_rejects, features)


_DEFAULT = TaggerConfig()


class Tagger(nn.Module):
    """Encoder -> dropout -> linear -> CRF over ``tags`` (``O`` first, as :func:`tag_names` builds them).

    ``transitions=False`` gives a token-independent softmax head trained with the same partial-label
    loss. ``entity_ratio`` (e.g. 0.1) adds the expected-entity-ratio penalty of
    :func:`sparse_ner.core.losses.expected_entity_ratio_loss` on unannotated tokens, weighted by
    ``ratio_weight``.

    ``reject_prior`` (``lam`` in [0, 1)) says how much likelier a rejected span is to be no entity at
    all than an entity of another label. The likelihood of an annotation becomes
    ``(1 - lam) P(consistent) + lam P(consistent, and no rejected span is an entity of any label)``:
    sequences with the rejected entity itself stay impossible (the exact constraint), sequences
    that give a rejected span another label keep weight ``1 - lam``. ``0`` is the plain exact
    loss; :meth:`make_batch` adds the strict lattice it needs.

    ``factored=True`` adds to each tag's score a shared *entity-ness* score (on every non-``O`` tag)
    and a per-label score (on every tag of that label): the same family of functions as the plain
    linear layer, but a reject of ``Friday`` as ``LOC`` now pushes down the entity-ness of
    ``Friday`` for every label instead of only moving its mass to the other labels (binary answers
    never say that a token is ``O``; without this a word rejected as three labels gets the fourth).

    ``o_bias`` is added to the score of ``O`` at every word whenever the tagger is not training
    (predictions, span probabilities, marginals): a prior shift towards fewer entities. Binary answers
    say little about the words nobody asked about, and a model trained on them tags more of those than
    one trained on complete annotation; training tunes the shift on the dev set
    (:mod:`sparse_ner.training.o_bias`). It is a plain attribute: set it to change predictions.
    """

    def __init__(
        self,
        encoder: nn.Module,
        labels: Sequence[str],
        scheme: Scheme = _DEFAULT.scheme,
        dropout: float = _DEFAULT.dropout,
        transitions: bool = _DEFAULT.transitions,
        entity_ratio: float | None = _DEFAULT.entity_ratio,
        ratio_margin: float = _DEFAULT.ratio_margin,
        ratio_weight: float = _DEFAULT.ratio_weight,
        factored: bool = _DEFAULT.factored,
        reject_prior: float = _DEFAULT.reject_prior,
        o_bias: float = 0.0,
    ) -> None:
        super().__init__()
        self.labels = list(labels)
        self.scheme = scheme
        self.tags = tag_names(self.labels, scheme)
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.emit = nn.Linear(encoder.output_dim, len(self.tags))
        self.crf = CRF(self.tags, scheme, transitions=transitions)
        self.factored = factored
        if not 0.0 <= reject_prior < 1.0:
            raise ValueError(f"reject_prior must be in [0, 1), got {reject_prior}")
        self.reject_prior = reject_prior
        if factored:
            self.factor = nn.Linear(encoder.output_dim, 1 + len(self.labels))
            spread = torch.zeros(1 + len(self.labels), len(self.tags))  # (1 + L, K)
            for k, tag in enumerate(self.tags):
                if tag != "O":
                    spread[0, k] = 1.0  # entity-ness
                    spread[1 + self.labels.index(split_tag(tag)[1]), k] = 1.0
            self.register_buffer("spread", spread, persistent=False)
        self.entity_ratio = entity_ratio
        self.ratio_margin = ratio_margin
        self.ratio_weight = ratio_weight
        self.o_bias = float(o_bias)
        self.register_buffer("is_o", torch.tensor([tag == "O" for tag in self.tags], dtype=torch.float32),
                             persistent=False)  # (K,)  # fmt: skip
        self.options = {"dropout": dropout, "transitions": transitions, "entity_ratio": entity_ratio,
                        "ratio_margin": ratio_margin, "ratio_weight": ratio_weight, "factored": factored,
                        "reject_prior": reject_prior}  # fmt: skip

    def emissions(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.dropout(self.encoder(inputs))  # (B, T, H)
        scores = self.emit(hidden)  # (B, T, K)
        if self.factored:
            scores = scores + self.factor(hidden) @ self.spread  # (B, T, 1 + L) @ (1 + L, K)
        scores = scores.float()  # the CRF always runs in float32, also under bfloat16 autocast
        if self.o_bias and not self.training:
            scores = scores + self.o_bias * self.is_o  # (B, T, K) + (K,)
        return scores

    @contextmanager
    def eval_without_o_bias(self) -> Iterator[Tagger]:
        """Eval mode with ``o_bias`` set to 0 (the scores as trained: review scores annotations under
        them, and the bias is tuned over them); the training mode and the bias are put back after."""
        was_training, bias = self.training, self.o_bias
        self.eval()
        self.o_bias = 0.0
        try:
            yield self
        finally:
            self.o_bias = bias
            self.train(was_training)

    def loss(self, batch: dict) -> torch.Tensor:
        """Mean partial-label NLL of the batch (plus the entity-ratio penalty when configured); a batch's
        ``"prior"`` (a teacher's log-posteriors) weights the taggings consistent with its answers."""
        emissions = self.emissions(batch["inputs"])  # (B, T, K)
        lattice = batch["lattice"]
        strict = batch.get("strict_lattice") if self.reject_prior > 0 else None
        if self.reject_prior > 0 and strict is None and lattice.num_states > len(self.tags):  # rejects, no strict
            raise ValueError("reject_prior needs the strict lattice: build batches with Tagger.make_batch "
                             "(or make_batch(..., strict_rejects=True))")
        prior = batch.get("prior")  # (B, T, K) a teacher's log q, or None
        if self.entity_ratio is None:
            return self.crf.nll(emissions, lattice, strict, self.reject_prior, prior).mean()
        from sparse_ner.core.losses import entity_ratio_penalty

        # the NLL and the marginals of the entity-ratio penalty from one forward pass
        nll, marginals = self.crf.nll_and_marginals(emissions, lattice, strict, self.reject_prior, prior)  # (B,), (B, T, K)
        mask = batch["inputs"]["word_mask"]  # (B, T)
        ratio = entity_ratio_penalty(marginals, mask, self.entity_ratio, self.ratio_margin)
        return nll.mean() + self.ratio_weight * ratio

    @property
    def batch_builder(self) -> BatchBuilder:
        """This tagger's batch building, as a picklable callable (a DataLoader's ``collate_fn``)."""
        return BatchBuilder(self.encoder, self.tags, self.scheme, strict_rejects=self.reject_prior > 0)

    def make_batch(self, examples: Sequence[Example], features: Sequence[dict] | None = None) -> dict:
        """A training batch of ``examples`` (:func:`make_batch` with this tagger's tags and scheme), with
        the strict-rejects lattice exactly when ``reject_prior`` needs it. ``features``: as in :func:`make_batch`."""
        return self.batch_builder(examples, features)

    @torch.no_grad()
    def predict(self, batch: dict) -> list[list[ScoredSpan]]:
        """Viterbi spans of each example with their exact probability ``P(span is an entity)``."""
        mask = batch["inputs"]["word_mask"]  # (B, T)
        emissions = self.emissions(batch["inputs"])  # (B, T, K)
        paths, _ = self.crf.decode(emissions, mask)  # B lists of tag indices
        spans = [decode_tags([self.tags[k] for k in path], self.scheme) for path in paths]
        probs = self.crf.span_probs(emissions, mask, spans)
        return [[ScoredSpan(s, e, label, float(p)) for (s, e, label), p in zip(ss, ps)] for ss, ps in zip(spans, probs)]

    def tag(self, examples: Sequence[Example], batch_size: int = 64) -> list[list[ScoredSpan]]:
        """Predict spans for ``examples`` (only their tokens are used), in order, in eval mode."""
        was_training = self.training
        self.eval()
        out: list[list[ScoredSpan]] = []
        try:
            for i in range(0, len(examples), batch_size):
                out.extend(self.predict(self.to_device(make_batch(self.encoder, examples[i : i + batch_size]))))
        finally:
            self.train(was_training)
        return out

    @torch.no_grad()
    def span_probs(self, examples: Sequence[Example], spans: Sequence[Sequence[TokenSpan]], batch_size: int = 64
                   ) -> list[list[float]]:  # fmt: skip
        """Exact ``P(span is an entity)`` of the given ``(start, end, label)`` token spans of each example
        (:meth:`CRF.span_probs <sparse_ner.core.crf.CRF.span_probs>`), in eval mode."""
        if len(spans) != len(examples):
            raise ValueError(f"{len(spans)} span lists for {len(examples)} examples")
        out: list[list[float]] = []
        for i, mask, emissions in self._emitted(examples, batch_size):
            out += self.crf.span_probs(emissions, mask, spans[i : i + len(mask)])
        return out

    @torch.no_grad()
    def token_marginals(self, examples: Sequence[Example], batch_size: int = 64) -> list[torch.Tensor]:
        """Per example, the posterior of each word's tag, ``(n_words, K)`` (columns in :attr:`tags` order;
        rows sum to 1), in eval mode. E.g. the expected share of entity words is the mass off ``O``."""
        out: list[torch.Tensor] = []
        for _, mask, emissions in self._emitted(examples, batch_size):
            unary = self.crf.posterior(emissions, mask).unary  # (B, T, K), 0 at padding
            out += [u[: int(n)].cpu() for u, n in zip(unary, mask.sum(1))]
        return out

    def _emitted(self, examples: Sequence[Example], batch_size: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(offset, word_mask (B, T), emissions (B, T, K))`` per batch of ``examples``, computed in eval
        mode (the previous mode is restored when the iteration ends or stops)."""
        was_training = self.training
        self.eval()
        try:
            for i in range(0, len(examples), batch_size):
                inputs = self.to_device(make_batch(self.encoder, examples[i : i + batch_size]))["inputs"]
                yield i, inputs["word_mask"], self.emissions(inputs)  # (B, T), (B, T, K)
        finally:
            self.train(was_training)

    @property
    def device(self) -> torch.device:
        """Where the tagger's parameters are (the one place it is read)."""
        return self.emit.weight.device

    def to_device(self, batch: dict) -> dict:
        """``batch`` with its input tensors and lattices moved to :attr:`device` (in place, returned)."""
        device = self.device
        batch["inputs"] = {k: v.to(device) for k, v in batch["inputs"].items()}
        for key in ("lattice", "strict_lattice"):
            if key in batch:
                batch[key] = batch[key].to(device)
        return batch

    @property
    def config(self) -> dict:
        """What :func:`sparse_ner.core.export.load` needs to rebuild this module (besides the encoder)."""
        return {"labels": self.labels, "tags": self.tags, "scheme": self.scheme, **self.options, "o_bias": self.o_bias}

    @classmethod
    def from_config(cls, encoder: nn.Module, config: dict) -> "Tagger":
        tagger = cls(encoder, config["labels"], config["scheme"], **{k: config[k] for k in config if k in HEAD_OPTIONS})
        if tagger.tags != config.get("tags", tagger.tags):
            raise ValueError(f"tag inventory mismatch: built {tagger.tags}, saved {config['tags']}")
        return tagger


__all__ = ["HEAD_OPTIONS", "BatchBuilder", "ScoredSpan", "Tagger", "TaggerConfig", "make_batch"]
