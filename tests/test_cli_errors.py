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


def one_line_error(capsys, argv: list[str]) -> str:
    """Run ``sparse-ner ARGV`` in process: rc 2 and one line ``sparse-ner NAME: error: ...``."""
    from sparse_ner.cli import main

    assert main(argv) == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert lines[-1].startswith(f"sparse-ner {argv[0]}: error:") and "Traceback" not in "\n".join(lines)
    return lines[-1]


def test_a_missing_model_folder_says_to_train_one(tmp_path: Path, capsys) -> None:
    paths = make_corpus(tmp_path, n_train=5, n_gold=3)
    line = one_line_error(capsys, ["predict", str(tmp_path / "nomodel"), str(paths["test"]), "-o", str(tmp_path / "o.jsonl")])
    assert "no model at" in line and "sparse-ner train CONFIG" in line and "tagger.json" in line
    (tmp_path / "empty").mkdir()
    line = one_line_error(capsys, ["predict", str(tmp_path / "empty"), str(paths["test"])])
    assert "holds no model" in line and "sparse-ner export CHECKPOINT" in line
    ckpt = tmp_path / "best.ckpt"
    ckpt.write_bytes(b"")
    line = one_line_error(capsys, ["predict", str(ckpt), str(paths["test"])])
    assert f"sparse-ner export {ckpt} OUT" in line


def test_a_wrong_column_encoding_suggests_the_right_one(tmp_path: Path, capsys) -> None:
    from sparse_ner.cli import main

    col = tmp_path / "gold.txt"
    col.write_text("Anna S-PER\nmet O\nBob B-PER\nSmith E-PER\n\n")
    line = one_line_error(capsys, ["simulate-teach", str(col), "-o", str(tmp_path / "t.jsonl")])  # default iob1
    assert "prefix 'S' is not valid in iob1" in line and "--encoding bioes" in line
    line = one_line_error(capsys, ["convert", str(col), "-o", str(tmp_path / "g.jsonl"), "--encoding", "iob1"])
    assert "--encoding bioes" in line
    col.write_text("Bob B-PER\nSmith M-PER\nJr E-PER\n\n")
    line = one_line_error(capsys, ["convert", str(col), "-o", str(tmp_path / "g.jsonl"), "--encoding", "bio"])
    assert "--encoding bmes" in line


def test_one_spelling_per_option(tmp_path: Path, capsys) -> None:
    """The column file's encoding is --encoding and the output file -o/--output in every command."""
    import pytest

    from sparse_ner.cli import main

    col = tmp_path / "gold.txt"
    col.write_text("Anna S-PER\nmet O\nBob B-PER\nSmith E-PER\n\n")
    assert main(["convert", str(col), "-o", str(tmp_path / "g.jsonl"), "--encoding", "bioes"]) == 0
    assert main(["convert", str(tmp_path / "g.jsonl"), "--output", str(tmp_path / "back.txt"), "--encoding", "bioes"]) == 0
    assert (tmp_path / "back.txt").read_text() == col.read_text()
    assert main(["simulate-teach", str(col), "--output", str(tmp_path / "t.jsonl"), "--encoding", "bioes"]) == 0
    assert (tmp_path / "t.jsonl").read_text().strip()
    # review reads a column file with --encoding (it gets as far as the missing model)
    line = one_line_error(capsys, ["review", str(col), "-o", str(tmp_path / "r.jsonl"), "--model",
                                   str(tmp_path / "nomodel"), "--encoding", "bioes"])  # fmt: skip
    assert "no model at" in line
    with pytest.raises(SystemExit):  # the old spelling is gone
        main(["review", str(col), "-o", str(tmp_path / "r.jsonl"), "--model", "m", "--column-encoding", "bioes"])
    capsys.readouterr()
    with pytest.raises(SystemExit):  # column file to column file: --encoding cannot say which side
        main(["convert", str(col), "-o", str(tmp_path / "x.txt"), "--encoding", "bioes"])


def test_export_errors_say_what_to_do(tmp_path: Path, capsys) -> None:
    line = one_line_error(capsys, ["export", str(tmp_path / "nope.ckpt"), str(tmp_path / "out")])
    assert "no checkpoint at" in line and "checkpoints/" in line
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    line = one_line_error(capsys, ["export", str(tmp_path / "bad.ckpt"), str(tmp_path / "out")])
    assert "not a readable checkpoint" in line
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    line = one_line_error(capsys, ["export", str(tmp_path / "bad.ckpt"), str(tmp_path / "out")])
    assert "--force" in line and (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_resuming_with_nothing_to_resume_is_one_line(tmp_path: Path) -> None:
    from synthetic import train_args

    paths = make_corpus(tmp_path, n_train=20, n_gold=5)
    out = run("-m", "sparse_ner", "train", *train_args(paths, tmp_path / "runs", epochs=1), "--ckpt_path", "last")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    line = [x for x in out.stderr.splitlines() if x.strip()][-1]
    assert "nothing to resume" in line and "--run_name" in line


def test_convert_mistakes_end_in_one_line(tmp_path: Path, capsys) -> None:
    """convert reports like every other command: output over its input, a format it cannot tell."""
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "Anna met Bob", "answer": "accept", "spans": [{"start": 0, "end": 4, "label": "PER"}]}\n')
    before = data.read_bytes()
    line = one_line_error(capsys, ["convert", str(data), "-o", str(data)])
    assert "over its own input" in line
    assert data.read_bytes() == before
    line = one_line_error(capsys, ["convert", str(data), "-o", str(tmp_path / "out.txt")])
    assert "--to FORMAT" in line and not (tmp_path / "out.txt").exists()
