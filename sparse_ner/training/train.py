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
``python -m sparse_ner.predict`` and ``python -m sparse_ner.evaluate``; ``runs/<run_name>/latest``
then points at it.

Resuming: ``ckpt_path`` (``last``: the ``last.ckpt`` of the newest ``runs/<run_name>/version_N``, or a
checkpoint path) continues a killed run in its own version folder. The checkpoint carries the random
generators (:class:`RandomState`) as well as the weights, optimizer and sampler epoch, so the resumed
run ends with the weights an uninterrupted run ends with.
"""

from __future__ import annotations

import csv
import logging
import random
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from jsonargparse import ActionConfigFile, Namespace
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

from sparse_ner.training.datamodule import TaggerDataModule
from sparse_ner.training.module import TaggerModule

PROG = "sparse-ner train"
USAGE = "sparse-ner train [CONFIG] [-o DIR] [--ckpt_path last|PATH] [--section.option VALUE ...]"
DESCRIPTION = ("Train a tagger (every option can be set in the YAML CONFIG or on the command line). CONFIG "
               "first is --config CONFIG; -o DIR is --export_dir DIR.")
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
    latest: Path | None = None  # runs/<run_name>/latest (or latest.txt), pointing at ``model``


@dataclass(frozen=True)
class _Request:
    """A config file and section overrides, from Python (:func:`fit`) rather than from ``argv``."""

    config: str | Path | None
    overrides: dict[str, Any]


# Lightning's adverts and hardware banner (real warnings and the model summary are kept)
_NOISE = re.compile(r"💡|\bTip:|litlogger|litmodels|^(GPU|TPU|HPU|IPU) available:", re.IGNORECASE)


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _NOISE.search(record.getMessage())


def silence_lightning_adverts() -> None:
    """Drop Lightning's tips, adverts and ``GPU available`` lines from its rank-zero log (and its
    sharding warning for weight averaging)."""
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero",
                 "lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):  # fmt: skip
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Quiet) for f in logger.filters):
            logger.addFilter(_Quiet())
    # TaggerModule builds its tagger in configure_model so that EMAWeightAveraging's copy holds it;
    # the callback then warns that it cannot shard the model, which nothing here does
    warnings.filterwarnings("ignore", message=r"You're using the WeightAveraging callback with a model that overrides")


class RandomState(Callback):
    """The random generators (torch, CUDA, Python, NumPy) in the checkpoint, so that a resumed run draws
    what an uninterrupted one draws (dropout, loader seeds).

    The state at the end of each epoch (after its validation, where checkpoints are saved) is put back
    at the next epoch's first training batch, in every run: whatever Lightning draws in between (a
    resumed run's sanity check, the loader's base seed, created before or after the epoch starts
    depending on the run) then changes nothing. Exact for checkpoints saved at the end of an epoch;
    under DDP each rank puts back rank 0's state.
    """

    def __init__(self) -> None:
        self._next: dict[str, Any] | None = None  # to put back at the next epoch's first batch

    def state_dict(self) -> dict[str, Any]:
        return _rng_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._next = state_dict

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._next = _rng_state()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._next = _rng_state()

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0 and self._next is not None:
            _set_rng_state(self._next)
            self._next = None


class ResumedEpochOrder(Callback):
    """A resumed run's first epoch draws its own batch order, not epoch 0's.

    Lightning creates the first training iterator of a ``fit`` (and with it the batch sampler's
    order) before it calls the sampler's ``set_epoch``; from a checkpoint that first epoch is not 0,
    so the iterator is made again once the epoch is set.
    """

    def __init__(self) -> None:
        self._first = True

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        first, self._first = self._first, False
        fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
        if first and trainer.current_epoch > 0 and fetcher is not None:
            iter(fetcher)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": _plain(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np
    except ImportError:
        return state
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state["numpy"] = [kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, gauss]
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy as np

        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, gauss))


def _plain(value: Any) -> Any:  # tuples as lists: a checkpoint that loads with weights_only=True
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class Checkpoints(ModelCheckpoint):
    """:class:`ModelCheckpoint` whose ``last.ckpt`` (``save_last``) is written after every epoch's
    validation, the point to resume from (Lightning 2.6 writes it only with a new top-k checkpoint)."""

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._save_last(trainer, on_train_epoch_end=True)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._save_last(trainer, on_train_epoch_end=False)

    def _save_last(self, trainer: Trainer, on_train_epoch_end: bool) -> None:
        if (self.save_last and not self._should_skip_saving_checkpoint(trainer)
                and self._should_save_on_train_epoch_end(trainer) == on_train_epoch_end
                and self._last_global_step_saved != trainer.global_step):  # fmt: skip
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def resolve_ckpt_path(value: str, run_dir: Path) -> Path:
    """``last``: the ``last.ckpt`` of the newest version folder of ``run_dir`` that has one; else the path."""
    if value != "last":
        path = Path(value)
        if path.is_dir():
            raise IsADirectoryError(f"--ckpt_path {value} is a folder: give a .ckpt file, or --ckpt_path last")
        if not path.exists():
            raise FileNotFoundError(f"--ckpt_path {value}: no such checkpoint (--ckpt_path last resumes "
                                    f"the newest run of {run_dir})")  # fmt: skip
        return path
    found = [p for p in run_dir.glob("*/checkpoints/last.ckpt") if p.is_file()]
    if not found:
        raise FileNotFoundError(f"--ckpt_path last: no run of {run_dir} has a checkpoints/last.ckpt: "
                                "nothing to resume (check --run_name and --trainer.default_root_dir, or train without --ckpt_path)")  # fmt: skip

    def newest(path: Path) -> tuple[int, float]:
        number = re.fullmatch(r"version_(\d+)", path.parent.parent.name)
        return (int(number.group(1)) if number else -1, path.stat().st_mtime)

    return max(found, key=newest)


def run_version(ckpt: Path, run_dir: Path) -> str | None:
    """The version folder (``version_N``) of ``run_dir`` that ``ckpt`` was saved in, if any."""
    folder = ckpt.resolve().parent
    if folder.name == "checkpoints" and folder.parent.parent == run_dir.resolve():
        return folder.parent.name
    return None


def default_loggers(root: str | Path, name: str, version: str | None = None, resume_epoch: int | None = None) -> list[Logger]:
    """A CSV logger, plus TensorBoard when installed, both writing to ``root/name/version_N`` (a new
    version, or ``version`` when resuming: its ``metrics.csv`` rows up to ``resume_epoch`` are kept)."""
    kept: list[dict[str, str]] = []
    if version is not None and resume_epoch is not None:
        metrics = Path(root) / name / version / "metrics.csv"
        if metrics.is_file():
            with metrics.open(newline="", encoding="utf8") as f:
                kept = [row for row in csv.DictReader(f) if not row.get("epoch") or float(row["epoch"]) <= resume_epoch]
    csv_logger = CSVLogger(root, name=name, version=version)
    if version is not None:
        with warnings.catch_warnings():  # "exists and is not empty": it is the run being resumed
            warnings.simplefilter("ignore")
            csv_logger.experiment.metrics.extend(kept)
    loggers: list[Logger] = [csv_logger]
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return loggers
    # the same version as the CSV logger, so that one run has one folder
    loggers.append(TensorBoardLogger(root, name=name, version=csv_logger.version, default_hp_metric=False))
    return loggers


class TaggerCLI(LightningCLI):
    resume_from: Path | None = None  # the checkpoint --ckpt_path resolved to

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("-o", "--output", "--export_dir", dest="export_dir", type=str | None, default=None,
                            help="where to export the trained model (default: <log dir>/model)")  # fmt: skip
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="resume training: 'last' (the last.ckpt of the newest run of <run_name>, "
                                 "logging into that run's folder) or a checkpoint file")  # fmt: skip
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({"early_stopping.monitor": "val_f1", "early_stopping.mode": "max",
                             "early_stopping.patience": 5})  # fmt: skip
        parser.add_lightning_class_args(Checkpoints, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": "val_f1", "checkpoint.mode": "max", "checkpoint.save_top_k": 1,
                             "checkpoint.filename": "best-{epoch}-{val_f1:.4f}", "checkpoint.save_last": True})  # fmt: skip
        parser.add_argument("--run_name", type=str, default="sparse_ner",
                            help="runs go to <trainer.default_root_dir>/<run_name>/version_N; "
                                 "<run_name>/latest points at the newest exported model")  # fmt: skip
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
        root = config["trainer"]["default_root_dir"] or "runs"
        version = resume_epoch = None
        if config.get("ckpt_path"):
            self.resume_from = resolve_ckpt_path(config["ckpt_path"], Path(root) / config["run_name"])
            version = run_version(self.resume_from, Path(root) / config["run_name"])
            # its checkpoint folder is not empty: it is the run being resumed
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            if version is not None:
                saved = torch.load(self.resume_from, map_location="cpu", weights_only=False, mmap=True)
                resume_epoch = int(saved.get("epoch", 0))
        if config["trainer"].get("logger") in (None, True):  # not set: the default loggers
            kwargs["logger"] = default_loggers(root, config["run_name"], version, resume_epoch)
        trainer = super().instantiate_trainer(**kwargs)
        # before the checkpoint callbacks (which Lightning puts last), so that they save the state they record
        trainer.callbacks[:0] = [RandomState(), ResumedEpochOrder()]
        return trainer


def tagger_cli(args: Sequence[str] | None = None, prog: str = PROG) -> TaggerCLI:
    """Parse ``--config FILE --section.option VALUE ...`` (``None``: ``sys.argv``) and build the
    trainer, module and datamodule; ``--help`` and ``--print_config`` exit here."""
    return _cli(None if args is None else list(args), prog=prog, exit_on_error=True)


def _cli(args: Any, prog: str = PROG, exit_on_error: bool = True) -> TaggerCLI:
    silence_lightning_adverts()
    return TaggerCLI(
        TaggerModule,
        TaggerDataModule,
        run=False,
        args=args,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        trainer_defaults=TRAINER_DEFAULTS,
        parser_kwargs={"prog": prog, "usage": USAGE, "description": DESCRIPTION, "exit_on_error": exit_on_error},
    )


def run(cli: TaggerCLI) -> FitResult:
    """Fit the built ``cli`` (resuming from ``--ckpt_path``), reload the best checkpoint, tune its ``O``
    bias on dev (``--model.o_bias auto``, :mod:`sparse_ner.training.o_bias`), evaluate on dev and test,
    export, and point ``runs/<run_name>/latest`` at the exported model."""
    from sparse_ner.training.checkpoint import check_output_folder, link_latest, write_folder

    trainer, module, data = cli.trainer, cli.model, cli.datamodule
    if cli.config.get("export_dir"):  # found before training, not after it
        check_output_folder(cli.config["export_dir"], replace_model=True)
    trainer.fit(module, datamodule=data, ckpt_path=None if cli.resume_from is None else str(cli.resume_from))

    callback = trainer.checkpoint_callback
    best = callback.best_model_path if callback else ""
    if best:  # reload the best weights into the built module (its vocabulary is in the encoder)
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
    if module.hparams.get("o_bias") == "auto" and data.dev_examples:  # the prediction-time O bias, on dev
        from sparse_ner.training.o_bias import describe, tune_o_bias

        best_bias, scores = tune_o_bias(module.tagger, data.val_dataloader())
        if trainer.is_global_zero:
            if best:  # so that `sparse-ner export` of the best checkpoint gives the model exported below
                from sparse_ner.training.checkpoint import record_o_bias

                record_o_bias(best, best_bias)
            complete = any(ex.complete for ex in data.dev_examples)
            print(f"[model] {describe(best_bias, scores, complete)}", flush=True)
    evaluations = []
    held_out = f"{data.train_path} (the held-out answers: eval_split)"
    for split, path in (("dev", data.dev_path or held_out), ("test", data.test_path)):
        if not path:
            continue
        if split == "test":
            data.setup("test")
        loader = data.val_dataloader() if split == "dev" else data.test_dataloader()
        trainer.test(module, dataloaders=loader, verbose=False)
        evaluations.append(Evaluation(split, str(path), dict(module.test_result)))

    export_dir = Path(cli.config.get("export_dir") or Path(trainer.log_dir or "runs") / "model")
    latest = None
    if trainer.is_global_zero:
        from sparse_ner.core.export import export

        config = cli.parser.dump(cli.config, skip_none=False)
        check_output_folder(export_dir, replace_model=True)
        write_folder(export_dir, lambda tmp: export(module.tagger, tmp, config))
        root = cli.config_init["trainer"]["default_root_dir"] or "runs"
        latest = link_latest(Path(root) / cli.config["run_name"], export_dir)
    score = callback.best_model_score if best else None
    return FitResult(model=export_dir, checkpoint=Path(best) if best else None,
                     best_val_f1=float(score) if score is not None else None, evaluations=evaluations,
                     global_rank=trainer.global_rank, latest=latest)  # fmt: skip


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
    ckpt_path: str | Path | None = None,
    seed_everything: int | bool | None = None,
) -> FitResult:
    """Train a tagger from a YAML ``config`` and section overrides; the model is exported to ``result.model``.

    The same as ``python -m sparse_ner.train --config CONFIG --data.train X ...``: each section is a
    dict of the options of that section (``data``: :class:`TaggerDataModule`, ``model``:
    :class:`TaggerModule`, ``trainer``: :class:`~pytorch_lightning.Trainer`, ``early_stopping`` and
    ``checkpoint``: the callbacks), set over the config file key by key (a dict-valued option such as
    ``model.encoder_options`` is replaced whole), then checked against the typed signatures: an
    unknown option or a value of the wrong type raises :class:`jsonargparse.ArgumentError`. ``None``
    sets nothing (write ``data={"test": None}`` to drop the config's test set). ``ckpt_path``:
    ``"last"`` or a checkpoint to resume from.
    """
    sections = {"data": data, "model": model, "trainer": trainer, "early_stopping": early_stopping,
                "checkpoint": checkpoint, "run_name": run_name, "seed_everything": seed_everything,
                "export_dir": None if export_dir is None else str(export_dir),
                "ckpt_path": None if ckpt_path is None else str(ckpt_path)}  # fmt: skip
    overrides = {k: dict(v) if isinstance(v, Mapping) else v for k, v in sections.items() if v is not None}
    return run(_cli(_Request(config, overrides), exit_on_error=False))
