"""Train a tagger: ``python -m sparse_ner.train --config configs/X.yaml [--section.option VALUE ...]``.

Built on :class:`pytorch_lightning.cli.LightningCLI` over :class:`~sparse_ner.training.module.TaggerModule`
(``--model.*``) and :class:`~sparse_ner.training.datamodule.TaggerDataModule` (``--data.*``); every option can
be set in the YAML or overridden on the command line (``--print_config`` shows them all). Defaults:
early stopping and checkpointing on dev ``val_f1``, a CSV logger (and TensorBoard when installed)
under ``runs/<run_name>/``, the resolved config saved next to the checkpoints.

After fitting, the best checkpoint is reloaded, evaluated on the test set when one is given, and the
model is exported (``--export_dir``, default ``<log dir>/model``) for :func:`sparse_ner.load`,
``python -m sparse_ner.predict`` and ``python -m sparse_ner.evaluate``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning import Trainer
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

from sparse_ner.training.datamodule import TaggerDataModule
from sparse_ner.training.module import TaggerModule
from sparse_ner.core.metrics import format_report


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

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self.config_init
        if config["trainer"].get("logger") in (None, True):  # not set: the default loggers
            kwargs["logger"] = default_loggers(config["trainer"]["default_root_dir"] or "runs", config["run_name"])
        return super().instantiate_trainer(**kwargs)


def main(argv: list[str] | None = None) -> int:
    cli = TaggerCLI(
        TaggerModule,
        TaggerDataModule,
        run=False,
        args=argv,  # None: sys.argv
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"default_root_dir": "runs", "gradient_clip_val": 5.0, "use_distributed_sampler": False,
                          "inference_mode": False},  # the CRF differentiates log Z for span probabilities
        parser_kwargs={"prog": "python -m sparse_ner.train"},
    )
    trainer, module, data = cli.trainer, cli.model, cli.datamodule
    trainer.fit(module, datamodule=data)

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:  # reload the best weights into the built module (its vocabulary is in the encoder)
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
        print(f"best checkpoint: {best} (val_f1 {float(trainer.checkpoint_callback.best_model_score):.4f})")
    for name, path in (("dev", data.dev_path), ("test", data.test_path)):
        if not path:
            continue
        if name == "test":
            data.setup("test")
        loader = data.val_dataloader() if name == "dev" else data.test_dataloader()
        trainer.test(module, dataloaders=loader, verbose=False)
        if trainer.is_global_zero:
            print(f"\n{name}: {path}\n{format_report(module.test_result)}")

    export_dir = cli.config.get("export_dir") or str(Path(trainer.log_dir or "runs") / "model")
    if trainer.is_global_zero:
        from sparse_ner.core.export import export

        config = cli.parser.dump(cli.config, skip_none=False)
        export(module.tagger, export_dir, config)
        print(f"\nexported model: {export_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
