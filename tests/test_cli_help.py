"""``sparse-ner SUB --help`` is quick (it imports no torch, no Lightning, not even numpy or srsly: its wall time is measured by
``scripts/bench_cli_help.py``, not here) and accurate (the stored ``train --help`` is the live LightningCLI help)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sparse_ner.cli import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pytorch_lightning", "lightning", "transformers", "spacy", "numpy", "srsly")
PROBE = """
import contextlib, io, json, sys
from sparse_ner.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        rc = main([sys.argv[1], "--help"])
    except SystemExit as exit:
        rc = exit.code
print(json.dumps({"rc": rc, "help": out.getvalue(), "heavy": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))
""" % (HEAVY,)


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_help_imports_nothing_heavy(name: str) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, name], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    probe = json.loads(out.stdout)
    assert probe["rc"] == 0 and "usage:" in probe["help"]
    assert probe["heavy"] == [], f"sparse-ner {name} --help imports {probe['heavy'][:5]}"


def test_stored_train_help_is_the_live_help() -> None:
    from sparse_ner.cli.train import HELP_COLUMNS
    from sparse_ner.cli.train_help import HELP

    code = "from sparse_ner.cli.train import live_help; print(live_help(), end='')"
    env = {**os.environ, "COLUMNS": str(HELP_COLUMNS)}
    live = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    assert HELP == live.stdout, "stale: regenerate with `python -m sparse_ner.cli.train --write-help`"
    for option in ("--ckpt_path", "-o EXPORT_DIR, --output EXPORT_DIR", "--data.train", "--checkpoint.save_last"):
        assert option in HELP


def test_the_spelled_out_choices_are_the_librarys() -> None:
    from sparse_ner.cli import convert, review
    from sparse_ner.data.convert import FORMATS
    from sparse_ner.review.score import DEFAULT_SCORE, SCORES

    assert convert.FORMATS == FORMATS and (review.SCORES, review.DEFAULT_SCORE) == (SCORES, DEFAULT_SCORE)
