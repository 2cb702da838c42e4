"""Resume and export from checkpoints: a training run killed (SIGKILL) after its first epoch and resumed with
``--ckpt_path last`` ends with the weights of an uninterrupted run, in the same version folder;
``sparse-ner export`` makes from ``best.ckpt`` the model that training exported."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from synthetic import make_corpus, train_args  # tests/synthetic.py

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 6
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def write_config(folder: Path) -> Path:
    """The synthetic corpus and a YAML config of ``train_args`` (no root dir, no export dir)."""
    paths = make_corpus(folder)
    config: dict = {}
    for arg in train_args(paths, folder, epochs=EPOCHS):
        key, value = arg[2:].split("=", 1)
        section, _, option = key.rpartition(".")
        if key not in ("trainer.default_root_dir", "export_dir"):
            (config.setdefault(section, {}) if section else config)[option] = yaml.safe_load(value)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train(config: Path, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sparse_ner", "train", str(config), f"--trainer.default_root_dir={root}", *extra]


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def readable(ckpt: Path) -> bool:
    try:
        torch.load(ckpt, map_location="cpu", weights_only=True)
        return True
    except Exception:  # not written yet, or being written
        return False


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("resume")
    config = write_config(folder)
    whole = subprocess.run(train(config, folder / "whole", "-o", str(folder / "whole_model")),
                           capture_output=True, text=True, cwd=ROOT, env=ENV)  # fmt: skip
    assert whole.returncode == 0, whole.stderr[-3000:]
    (folder / "whole.out").write_text(whole.stdout + whole.stderr)
    return {"folder": folder, "config": config, "whole": folder / "whole" / "sparse_ner" / "version_0",
            "whole_model": folder / "whole_model", "whole_stdout": Path(folder / "whole.out")}  # fmt: skip


def test_a_killed_run_resumes_from_the_cli_to_the_same_weights(runs: dict[str, Path]) -> None:
    root = runs["folder"] / "killed"
    last = root / "sparse_ner" / "version_0" / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(train(runs["config"], root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=ROOT, env=ENV)  # fmt: skip
    deadline = time.monotonic() + 300
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if last.exists():
                os.kill(process.pid, signal.SIGSTOP)  # frozen, so a checkpoint being written stays as it is
                if readable(last):
                    os.kill(process.pid, signal.SIGKILL)
                    break
                os.kill(process.pid, signal.SIGCONT)
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    epoch = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    assert epoch < EPOCHS - 1, "killed after its last epoch: nothing left to resume"
    assert not (root / "sparse_ner" / "version_0" / "model").exists()

    resumed = subprocess.run(train(runs["config"], root, "--ckpt_path", "last"), capture_output=True, text=True,
                             cwd=ROOT, env=ENV)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restored all states" in resumed.stderr + resumed.stdout
    assert sorted(p.name for p in (root / "sparse_ner").iterdir() if p.name.startswith("version")) == ["version_0"]
    assert "latest model:" in resumed.stdout

    for name in ("last.ckpt",):
        a, b = weights(runs["whole"] / "checkpoints" / name), weights(last)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    whole_best = sorted((runs["whole"] / "checkpoints").glob("best-*.ckpt"))
    resumed_best = sorted(last.parent.glob("best-*.ckpt"))
    assert [p.name for p in whole_best] == [p.name for p in resumed_best]
    # the metrics of the killed part are kept, once per epoch
    rows = (root / "sparse_ner" / "version_0" / "metrics.csv").read_text().splitlines()
    epochs = [r.split(",")[0] for r in rows[1:]]
    assert [e for e in epochs if e][:EPOCHS] == [str(i) for i in range(EPOCHS)]


def test_export_from_the_best_checkpoint_is_the_exported_model(runs: dict[str, Path]) -> None:
    import sparse_ner
    from sparse_ner.data.read import read_any

    (best,) = (runs["whole"] / "checkpoints").glob("best-*.ckpt")
    out = runs["folder"] / "exported"
    done = subprocess.run([sys.executable, "-m", "sparse_ner", "export", str(best), str(out)], capture_output=True,
                          text=True, cwd=ROOT, env=ENV)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    examples = read_any(runs["folder"] / "test.jsonl", gold=True)
    assert sparse_ner.load(out).tag(examples) == sparse_ner.load(runs["whole_model"]).tag(examples)
    assert (out / "config.yaml").read_text() == (runs["whole"] / "config.yaml").read_text()
    # the O bias tuned after training is in the best checkpoint, so the export has it too
    assert torch.load(best, map_location="cpu", weights_only=True)["sparse_ner"]["o_bias_tuned"] is True
    assert json.loads((out / "tagger.json").read_text())["o_bias"] == \
        json.loads((runs["whole_model"] / "tagger.json").read_text())["o_bias"]
    assert "not tuned" not in done.stderr
    # an existing folder is not written over without --force, and is left as it was
    again = subprocess.run([sys.executable, "-m", "sparse_ner", "export", str(best), str(out)], capture_output=True,
                           text=True, cwd=ROOT, env=ENV)  # fmt: skip
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr
    forced = subprocess.run([sys.executable, "-m", "sparse_ner", "export", str(best), str(out), "--force"],
                            capture_output=True, text=True, cwd=ROOT, env=ENV)  # fmt: skip
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".exported")]  # no temp folder left


def test_a_recorded_o_bias_is_exported_and_an_untuned_one_is_said(runs: dict[str, Path]) -> None:
    from sparse_ner.training.checkpoint import record_o_bias

    folder = runs["folder"] / "o_bias"
    folder.mkdir()
    (best,) = (runs["whole"] / "checkpoints").glob("best-*.ckpt")
    copy = folder / best.name
    shutil.copy(best, copy)
    record_o_bias(copy, 2.5)
    assert torch.load(copy, map_location="cpu", weights_only=True)["sparse_ner"]["tagger"]["o_bias"] == 2.5
    assert [p.name for p in folder.iterdir()] == [copy.name]  # no temporary file left
    export = [sys.executable, "-m", "sparse_ner", "export"]
    done = subprocess.run([*export, str(copy), str(folder / "a")], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((folder / "a" / "tagger.json").read_text())["o_bias"] == 2.5
    # last.ckpt was saved while training (o_bias auto, never tuned for its weights): 0, and a note says so
    last = runs["whole"] / "checkpoints" / "last.ckpt"
    done = subprocess.run([*export, str(last), str(folder / "b")], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((folder / "b" / "tagger.json").read_text())["o_bias"] == 0.0
    assert "was not tuned for last.ckpt" in done.stderr and "--o-bias" in done.stderr
    done = subprocess.run([*export, str(last), str(folder / "c"), "--o-bias", "-0.5"], capture_output=True, text=True,
                          cwd=ROOT, env=ENV)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((folder / "c" / "tagger.json").read_text())["o_bias"] == -0.5
    assert "not tuned" not in done.stderr


def test_latest_points_at_the_newest_exported_model(runs: dict[str, Path]) -> None:
    import sparse_ner

    latest = runs["whole"].parent / "latest"
    assert latest.is_symlink() and latest.resolve() == runs["whole_model"].resolve()
    assert sparse_ner.load(latest).labels == sparse_ner.load(runs["whole_model"]).labels


def test_lightning_tips_and_adverts_are_silenced(runs: dict[str, Path]) -> None:
    import logging

    from sparse_ner.training.train import _Quiet

    output = runs["whole_stdout"].read_text()
    for noise in ("💡", "Tip:", "litmodels", "litlogger", "GPU available", "TPU available", "HPU available"):
        assert noise not in output, noise
    assert "latest model:" in output and "exported model:" in output
    record = lambda msg: logging.LogRecord("pytorch_lightning", logging.WARNING, "", 0, msg, None, None)  # noqa: E731
    assert _Quiet().filter(record("The number of training batches (4) is smaller than the logging interval"))
    assert not _Quiet().filter(record("GPU available: True (cuda), used: True"))


def test_latest_falls_back_to_a_text_file_and_folders_are_written_whole(tmp_path: Path, monkeypatch) -> None:
    from sparse_ner.training.checkpoint import link_latest, write_folder

    model = write_folder(tmp_path / "model", lambda tmp: (tmp / "tagger.json").write_text("{}"))
    assert link_latest(tmp_path / "run", model).is_symlink()
    # a failed write leaves the old folder as it was and no temporary folder behind
    def fail(tmp: Path) -> None:
        (tmp / "tagger.json").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_folder(model, fail)
    assert (model / "tagger.json").read_text() == "{}" and sorted(p.name for p in tmp_path.iterdir()) == ["model", "run"]

    def no_symlinks(*args: object, **kwargs: object) -> None:
        raise OSError("symlinks not permitted")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    text = link_latest(tmp_path / "run2", model)
    assert text.name == "latest.txt" and Path(text.read_text().strip()) == model.resolve()


def test_a_checkpoint_loads_into_a_module_without_data(runs: dict[str, Path]) -> None:
    import sparse_ner
    from sparse_ner.data.read import read_any
    from sparse_ner.training.module import TaggerModule

    (best,) = (runs["whole"] / "checkpoints").glob("best-*.ckpt")
    module = TaggerModule.load_from_checkpoint(best, map_location="cpu")  # the tagger is built from the checkpoint
    examples = read_any(runs["folder"] / "test.jsonl", gold=True)
    assert module.tagger.eval().tag(examples) == sparse_ner.load(runs["whole_model"]).tag(examples)
