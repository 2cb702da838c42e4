"""Lightning's own weight averaging (``--trainer.callbacks+=pytorch_lightning.callbacks.EMAWeightAveraging``).

The callback copies the module when fitting starts. The tagger used to be built later (in ``setup``), so
the copy held no weights: nothing was averaged, and reloading the best checkpoint failed ("Missing key(s)
in state_dict"). Now the copy holds the tagger: every step is averaged, validation, the best checkpoint and
the exported model are the average, and a resumed run ends where an uninterrupted one does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning.callbacks as lightning_callbacks
import torch

from synthetic import make_corpus, train_args  # tests/synthetic.py

pytestmark = pytest.mark.skipif(not hasattr(lightning_callbacks, "EMAWeightAveraging"),
                                reason="EMAWeightAveraging came with pytorch-lightning 2.6")

EMA = ["--trainer.callbacks+=pytorch_lightning.callbacks.EMAWeightAveraging", "--trainer.callbacks.decay=0.5"]
CONSTANT = ["--model.decay=false", "--model.warmup=0"]  # the same schedule whatever max_epochs is


def train(paths: dict[str, Path], out: Path, epochs: int, *extra: str) -> None:
    from sparse_ner.cli.train import main

    assert main(train_args(paths, out, epochs=epochs) + EMA + CONSTANT + ["--model.o_bias=0", *extra]) == 0


def checkpoint(out: Path, pattern: str) -> dict:
    (path,) = out.rglob(pattern)
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ema")
    paths = make_corpus(folder)
    train(paths, folder / "whole", 4)
    train(paths, folder / "resumed", 2)
    train(paths, folder / "resumed", 4, "--ckpt_path=last")
    return {**paths, "whole": folder / "whole", "resumed": folder / "resumed"}


def test_every_step_is_averaged_and_the_best_checkpoint_holds_the_average(runs: dict[str, Path]) -> None:
    best = checkpoint(runs["whole"], "best-*.ckpt")
    average, raw = best["state_dict"], best["current_model_state"]
    assert average and set(average) == set(raw) and all(k.startswith("tagger.") for k in average)
    assert int(best["averaging_state"]["n_averaged"]) == best["global_step"] > 0
    assert any(not torch.equal(average[k], raw[k]) for k in average if average[k].is_floating_point())


def test_the_exported_model_is_the_average_validation_scored(runs: dict[str, Path]) -> None:
    import sparse_ner
    from sparse_ner.core.evaluate import evaluate

    best = checkpoint(runs["whole"], "best-*.ckpt")
    exported = sparse_ner.load(runs["whole"] / "model").state_dict()
    assert set(exported) == {k.removeprefix("tagger.") for k in best["state_dict"]}
    for key, value in exported.items():
        assert torch.equal(value, best["state_dict"][f"tagger.{key}"]), key
    (state,) = (v for k, v in best["callbacks"].items() if k.startswith("Checkpoints"))  # ModelCheckpoint's state
    score = float(state["best_model_score"])
    assert evaluate(runs["whole"] / "model", runs["dev"])["f1"] == pytest.approx(score, abs=1e-6)


def test_a_resumed_run_ends_with_the_same_raw_and_averaged_weights(runs: dict[str, Path]) -> None:
    whole, resumed = checkpoint(runs["whole"], "last.ckpt"), checkpoint(runs["resumed"], "last.ckpt")
    assert whole["global_step"] == resumed["global_step"]
    for key in ("state_dict", "current_model_state"):
        assert set(whole[key]) == set(resumed[key])
        for name, value in whole[key].items():
            assert torch.equal(value, resumed[key][name]), (key, name)
