"""Ordinary mistakes end in one line that says what is wrong, not a traceback; --version; labels as PER,ORG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from synthetic import make_corpus

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT)


def test_a_missing_file_is_one_line_and_verbose_shows_the_traceback(tmp_path: Path) -> None:
    out = run("-m", "sparse_ner.predict", str(tmp_path), str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = [x for x in out.stderr.splitlines() if x.strip()][-1:]
    assert line.startswith("sparse-ner predict: error:")
    out = run("-m", "sparse_ner", "predict", str(tmp_path), str(tmp_path / "nope.jsonl"), "--verbose")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_version_and_labels_in_prodigys_spelling(tmp_path: Path) -> None:
    from sparse_ner import __version__
    from sparse_ner.training.datamodule import TaggerDataModule

    out = run("-m", "sparse_ner", "--version")
    assert out.returncode == 0 and out.stdout.strip() == f"sparse-ner {__version__}"
    paths = make_corpus(tmp_path)
    assert TaggerDataModule(str(paths["train"]), str(paths["dev"]), labels="PER, LOC").labels == ["PER", "LOC"]


def test_inferred_labels_are_counted_and_typos_flagged() -> None:
    from collections import Counter

    from sparse_ner.training.datamodule import label_report, odd_labels

    counts = Counter({"PER": 900, "ORG": 700, "per": 3, "FOO": 2, "MISC": 40})
    assert odd_labels(counts) == ["FOO", "per"]
    report = label_report(counts)
    assert "PER 900" in report and "FOO, per" in report and "--data.labels" in report
    assert odd_labels(Counter({"PER": 3, "LOC": 2})) == []  # a small corpus is not a typo
