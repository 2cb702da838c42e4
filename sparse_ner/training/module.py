"""The thin :class:`TaggerModule`: training and evaluation steps around a :class:`~sparse_ner.core.tagger.Tagger`.

The tagger is built (through :class:`~sparse_ner.core.tagger.TaggerConfig`, from the module's
hyperparameters) in :meth:`TaggerModule.setup`, because its labels and (for the small encoder) its
vocabulary come from the training data held by :class:`~sparse_ner.training.datamodule.TaggerDataModule`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import pytorch_lightning as pl
import torch

from sparse_ner.core.encoders import encoder_lr as resolve_encoder_lr
from sparse_ner.core.tagger import TaggerConfig
from sparse_ner.core.metrics import EntityF1
from sparse_ner.core.tagger import Tagger
from sparse_ner.tags import Scheme

_DEFAULT = TaggerConfig()


class TaggerModule(pl.LightningModule):
    """Train a :class:`Tagger` with the partial-label CRF loss; pick checkpoints by dev entity F1.

    The tagger's options (``encoder`` ... ``reject_prior``) are the fields of :class:`TaggerConfig`, with
    its defaults and types (``tests/core/test_config.py`` checks that they stay the same); they are
    spelled out here because ``LightningCLI`` builds the ``--model.*`` options from this signature.

    Args:
        encoder: ``"small"`` (word + character encoder, vocabulary from the training data), ``"minilm"``
            (the packaged MiniLM) or the path of a Hugging Face model folder.
        encoder_options: keyword arguments of the encoder's builder (e.g. ``{"hidden": 128}``).
        labels: entity labels; taken from the data module when not given.
        scheme: tag scheme, ``bio`` or ``bioes`` (linked to the data module's).
        dropout: dropout before the emission layer.
        transitions: CRF transition scores; ``False`` gives a softmax head with the same loss.
        entity_ratio: expected share of entity tokens for the entity-ratio penalty (``None``: off;
            ``"auto"``, the default for training: measured on the complete annotations of the training
            or dev data, see :mod:`sparse_ner.training.entity_ratio`).
        ratio_margin: tolerance of the entity-ratio penalty.
        ratio_weight: weight of the entity-ratio penalty.
        factored: add shared entity-ness and per-label scores to the emissions (see ``Tagger``).
        reject_prior: how much likelier a rejected span is no entity at all than an entity of another
            label, in [0, 1) (0: rejects only rule out their own label; see ``Tagger``).
        o_bias: added to the score of ``O`` when predicting (a prior shift towards fewer entities);
            ``"auto"``, the default for training: 0 while training, then the value with the best dev F1
            (:mod:`sparse_ner.training.o_bias`), kept in the exported model.
        lr: learning rate of the head and the CRF (and of the encoder when ``encoder_lr`` is not set).
        encoder_lr: learning rate of the encoder; ``None``: ``lr`` for the small encoder, 1e-4 for a
            pretrained transformer (:data:`~sparse_ner.core.encoders.PRETRAINED_LR`).
        weight_decay: AdamW weight decay (not applied to biases and norms).
        warmup: share of the training steps with a linear learning-rate warm-up.
        decay: decay the learning rate linearly to 0 at the last step (else keep it constant).
    """

    def __init__(
        self,
        encoder: str = _DEFAULT.encoder,
        encoder_options: dict[str, Any] | None = _DEFAULT.encoder_options,
        labels: list[str] | None = None,
        scheme: Scheme = _DEFAULT.scheme,
        dropout: float = _DEFAULT.dropout,
        transitions: bool = _DEFAULT.transitions,
        entity_ratio: float | Literal["auto"] | None = "auto",  # the one default that differs from TaggerConfig
        ratio_margin: float = _DEFAULT.ratio_margin,
        ratio_weight: float = _DEFAULT.ratio_weight,
        factored: bool = _DEFAULT.factored,
        reject_prior: float = _DEFAULT.reject_prior,
        o_bias: float | Literal["auto"] = "auto",  # tuned on dev after training (TaggerConfig: 0)
        lr: float = 1e-3,
        encoder_lr: float | None = None,
        weight_decay: float = 0.01,
        warmup: float = 0.05,
        decay: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.tagger: Tagger | None = None
        self.metric: EntityF1 | None = None

    # --- building ------------------------------------------------------------------------------
    @property
    def tagger_config(self) -> TaggerConfig:
        """The tagger's options, from the hyperparameters."""
        return TaggerConfig(**{name: self.hparams[name] for name in TaggerConfig.names()})

    def build(self, labels: list[str], train_words: list[list[str]]) -> Tagger:
        """Build the encoder and the tagger (vocabulary from ``train_words`` for the small encoder).
        ``entity_ratio: auto`` is resolved by :meth:`setup` from the data module; without one, here,
        to the fallback value (nothing to measure it on)."""
        if self.hparams.entity_ratio == "auto":
            self.resolve_entity_ratio([], None)
        self.tagger = self.tagger_config.build(labels, train_words)
        self.warn_coverage(train_words)
        self.metric = EntityF1(list(labels))
        self.hparams.labels = list(labels)
        return self.tagger

    def warn_coverage(self, train_words: list[list[str]]) -> None:
        """Print a warning when a pretrained encoder's tokenizer does not know more than
        :data:`~sparse_ner.core.encoders.UNKNOWN_MAX` of the training words (e.g. an English model on
        Chinese text): those words all look alike to it."""
        from sparse_ner.core.encoders import coverage_warning

        if self._trainer is not None and not self.trainer.is_global_zero:
            return
        message = coverage_warning(self.tagger.encoder, train_words, self.hparams.encoder, "the training data")
        if message:
            print(f"[model] warning: {message}; they all look alike to the encoder: "
                  f"--model.encoder small learns the data's own words, or give a model folder for this language",
                  flush=True)  # fmt: skip

    def configure_model(self) -> None:
        """Build the tagger from the data module, once. Lightning calls this after :meth:`setup`; callbacks
        that copy the model when fitting starts (``EMAWeightAveraging``) call it before, so the copy
        holds the tagger. Without a data module (``load_from_checkpoint``) the checkpoint builds it."""
        dm = self.trainer.datamodule if self._trainer is not None else None
        if self.tagger is not None or dm is None:
            return
        if self.hparams.entity_ratio == "auto":
            self.resolve_entity_ratio(dm.train_examples or [], dm.dev_examples)
        self.build(self.hparams.labels or dm.labels, dm.train_words())

    def setup(self, stage: str) -> None:
        self.configure_model()
        if self.tagger is None:
            raise RuntimeError("TaggerModule builds its tagger from a TaggerDataModule: pass datamodule=")
        dm = self.trainer.datamodule if self._trainer is not None else None
        if dm is not None and hasattr(dm, "attach"):
            dm.attach(self.tagger.batch_builder)

    def resolve_entity_ratio(self, train: list, dev: list | None = None) -> float:
        """Replace ``entity_ratio: auto`` by the value measured on ``train`` / ``dev`` examples
        (:func:`~sparse_ner.training.entity_ratio.auto_entity_ratio`), printed and kept in the hyperparameters."""
        from sparse_ner.training.entity_ratio import auto_entity_ratio

        value, why = auto_entity_ratio(train, dev)
        self.hparams.entity_ratio = round(value, 4)
        if self._trainer is None or self.trainer.is_global_zero:
            print(f"[model] {why}", flush=True)
        return self.hparams.entity_ratio

    # --- checkpoints (sparse_ner.training.checkpoint) -----------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store what rebuilding the tagger needs besides the weights (tags, options, the small
        encoder's vocabulary), so that ``sparse-ner export`` makes a model folder from any checkpoint."""
        from sparse_ner.training.checkpoint import KEY, describe

        if self.tagger is not None:
            checkpoint[KEY] = describe(self.tagger)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Build the tagger from the checkpoint when there is none yet (``TaggerModule.load_from_checkpoint``)."""
        from sparse_ner.training.checkpoint import KEY, tagger_from_description

        if self.tagger is None and KEY in checkpoint:
            self.tagger = tagger_from_description(checkpoint[KEY])
            self.metric = EntityF1(list(self.tagger.labels))

    # --- steps ---------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.tagger.loss(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["gold"]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate_step(batch, "test")

    def _evaluate_step(self, batch: dict, prefix: str) -> None:
        self.log(f"{prefix}_loss", self.tagger.loss(batch), batch_size=len(batch["gold"]), sync_dist=True)
        preds = self.tagger.predict(batch)
        self.metric.update([[s[:3] for s in spans] for spans in preds], batch["gold"], batch["rejected"], batch["complete"])

    def on_validation_epoch_end(self) -> None:
        self._log_metric("val")

    def on_test_epoch_end(self) -> None:
        self.test_result = self._log_metric("test")

    def _log_metric(self, prefix: str) -> dict[str, float]:
        result = {k: float(v) for k, v in self.metric.compute().items()}
        self.metric.reset()
        micro = ("precision", "recall", "f1")
        self.log_dict({f"{prefix}_{k}": result[k] for k in micro}, prog_bar=True)
        self.log_dict({f"{prefix}_{k}": v for k, v in result.items() if k not in micro})
        return result

    # --- optimization --------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        no_decay = lambda name: name.endswith("bias") or "norm" in name.lower()  # noqa: E731
        groups: dict[tuple[bool, bool], list] = {}
        for name, param in self.tagger.named_parameters():
            if param.requires_grad:
                groups.setdefault((name.startswith("encoder."), no_decay(name)), []).append(param)
        enc_lr = resolve_encoder_lr(self.tagger.encoder, hp.lr, hp.encoder_lr)
        param_groups = [
            {"params": params, "lr": enc_lr if is_enc else hp.lr,
             "weight_decay": 0.0 if nd else hp.weight_decay}  # fmt: skip
            for (is_enc, nd), params in groups.items()
        ]
        optimizer = torch.optim.AdamW(param_groups, fused=True)  # one kernel per step (faster on CPU: BENCHMARKS.md)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warm = int(math.ceil(hp.warmup * total))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            if not hp.decay:
                return 1.0
            return max(0.0, (total - step) / max(total - warm, 1))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
