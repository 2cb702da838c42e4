"""Train a tagger: :func:`fit` from Python, ``python -m sparse_ner.train`` from a shell (:mod:`sparse_ner.cli.train`).

Built on :class:`pytorch_lightning.cli.LightningCLI` over :class:`~sparse_ner.training.module.TaggerModule`
(the ``model`` section) and :class:`~sparse_ner.training.datamodule.TaggerDataModule` (``data``): their
typed ``__init__`` signatures are the one declaration of the options, read by jsonargparse from a YAML
config, from ``--section.option`` arguments or from the section dicts given to :func:`fit`, and
checked the same way in all three. Defaults: early stopping and checkpointing on dev ``val_f1``, a
CSV logger (and TensorBoard when installed) under ``runs/<run_name>/``, the resolved config saved
next to the checkpoints.

After fitting, the best checkpoint is reloaded, evaluated on the dev and test sets, and the model is
exported (``export_dir``, default ``<log dir>/model``) for :func:`sparse_ner.load`,
``python -m sparse_ner.predict`` and ``python -m sparse_ner.evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from jsonargparse import ActionConfigFile, Namespace
from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

from sparse_ner.training.datamodule import TaggerDataModule
from sparse_ner.training.module import TaggerModule

PROG = "python -m sparse_ner.train"
TRAINER_DEFAULTS: dict[str, Any] = {
    "default_root_dir": "runs",
    "gradient_clip_val": 5.0,
    "use_distributed_sampler": False,  # the datamodule's sampler shards by rank itself
    "inference_mode": False,  # the CRF differentiates log Z for span probabilities
}


@dataclass(frozen=True)
class Evaluation:
    """Entity P/R/F1 of the best checkpoint on one split (``EntityF1.compute()`` as floats)."""

    split: str  # "dev" or "test"
    path: str  # the data file
    result: dict[str, float]


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` made. Under DDP every rank returns one; only rank 0 exports."""

    model: Path  # the exported model folder (for sparse_ner.load)
    checkpoint: Path | None  # the best checkpoint, if one was saved
    best_val_f1: float | None  # its dev F1 (the checkpoint monitor)
    evaluations: list[Evaluation] = field(default_factory=list)  # dev, then test when given
    global_rank: int = 0


@dataclass(frozen=True)
class _Request:
    """A config file and section overrides, from Python (:func:`fit`) rather than from ``argv``."""

    config: str | Path | None
    overrides: dict[str, Any]


def default_loggers(root: str | Path, name: str) -> list[Logger]:
    """A CSV logger, plus TensorBoard when installed, both writing to ``root/name/version_N``."""
    csv = CSVLogger(root, name=name)
    loggers: list[Logger] = [csv]
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return loggers
    # the same version as the CSV logger, so that one run has one folder
    loggers.append(TensorBoardLogger(root, name=name, version=csv.version, default_hp_metric=False))
    return loggers


class TaggerCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--export_dir", type=str | None, default=None,
                            help="where to export the trained model (default: <log dir>/model)")  # fmt: skip
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({"early_stopping.monitor": "val_f1", "early_stopping.mode": "max",
                             "early_stopping.patience": 5})  # fmt: skip
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": "val_f1", "checkpoint.mode": "max", "checkpoint.save_top_k": 1,
                             "checkpoint.filename": "best-{epoch}-{val_f1:.4f}"})  # fmt: skip
        parser.add_argument("--run_name", type=str, default="sparse_ner",
                            help="runs go to <trainer.default_root_dir>/<run_name>/version_N")  # fmt: skip
        parser.link_arguments("data.scheme", "model.scheme")
        parser.link_arguments("data.labels", "model.labels")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        if not isinstance(args, _Request):  # a command line (`sparse-ner train` passes argv[2:]: no warning)
            self.config = parser.parse_args(args)
            return
        # the config file as `--config FILE` reads it, then the sections over it, checked as one
        base = Namespace(config=[])
        if args.config is not None:
            ActionConfigFile.apply_config(parser, base, "config", str(args.config))
        self.config = parser.parse_object(args.overrides, namespace=base)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self.config_init
        if config["trainer"].get("logger") in (None, True):  # not set: the default loggers
            kwargs["logger"] = default_loggers(config["trainer"]["default_root_dir"] or "runs", config["run_name"])
        return super().instantiate_trainer(**kwargs)


def tagger_cli(args: Sequence[str] | None = None, prog: str = PROG) -> TaggerCLI:
    """Parse ``--config FILE --section.option VALUE ...`` (``None``: ``sys.argv``) and build the
    trainer, module and datamodule; ``--help`` and ``--print_config`` exit here."""
    return _cli(None if args is None else list(args), prog=prog, exit_on_error=True)


def _cli(args: Any, prog: str = PROG, exit_on_error: bool = True) -> TaggerCLI:
    return TaggerCLI(
        TaggerModule,
        TaggerDataModule,
        run=False,
        args=args,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        trainer_defaults=TRAINER_DEFAULTS,
        parser_kwargs={"prog": prog, "exit_on_error": exit_on_error},
    )


def run(cli: TaggerCLI) -> FitResult:
    """Fit the built ``cli``, reload the best checkpoint, evaluate on dev and test, export."""
    trainer, module, data = cli.trainer, cli.model, cli.datamodule
    trainer.fit(module, datamodule=data)

    callback = trainer.checkpoint_callback
    best = callback.best_model_path if callback else ""
    if best:  # reload the best weights into the built module (its vocabulary is in the encoder)
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
    evaluations = []
    for split, path in (("dev", data.dev_path), ("test", data.test_path)):
        if not path:
            continue
        if split == "test":
            data.setup("test")
        loader = data.val_dataloader() if split == "dev" else data.test_dataloader()
        trainer.test(module, dataloaders=loader, verbose=False)
        evaluations.append(Evaluation(split, str(path), dict(module.test_result)))

    export_dir = Path(cli.config.get("export_dir") or Path(trainer.log_dir or "runs") / "model")
    if trainer.is_global_zero:
        from sparse_ner.core.export import export

        export(module.tagger, export_dir, cli.parser.dump(cli.config, skip_none=False))
    score = callback.best_model_score if best else None
    return FitResult(model=export_dir, checkpoint=Path(best) if best else None,
                     best_val_f1=float(score) if score is not None else None, evaluations=evaluations,
                     global_rank=trainer.global_rank)  # fmt: skip


def fit(
    config: str | Path | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    trainer: Mapping[str, Any] | None = None,
    early_stopping: Mapping[str, Any] | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    run_name: str | None = None,
    export_dir: str | Path | None = None,
    seed_everything: int | bool | None = None,
) -> FitResult:
    """Train a tagger from a YAML ``config`` and section overrides; the model is exported to ``result.model``.

    The same as ``python -m sparse_ner.train --config CONFIG --data.train X ...``: each section is a
    dict of the options of that section (``data``: :class:`TaggerDataModule`, ``model``:
    :class:`TaggerModule`, ``trainer``: :class:`~pytorch_lightning.Trainer`, ``early_stopping`` and
    ``checkpoint``: the callbacks), set over the config file key by key (a dict-valued option such as
    ``model.encoder_options`` is replaced whole), then checked against the typed signatures: an
    unknown option or a value of the wrong type raises :class:`jsonargparse.ArgumentError`. ``None``
    sets nothing (write ``data={"test": None}`` to drop the config's test set).
    """
    sections = {"data": data, "model": model, "trainer": trainer, "early_stopping": early_stopping,
                "checkpoint": checkpoint, "run_name": run_name, "seed_everything": seed_everything,
                "export_dir": None if export_dir is None else str(export_dir)}  # fmt: skip
    overrides = {k: dict(v) if isinstance(v, Mapping) else v for k, v in sections.items() if v is not None}
    return run(_cli(_Request(config, overrides), exit_on_error=False))
