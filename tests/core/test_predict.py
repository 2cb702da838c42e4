"""``python -m sparse_ner.predict``: streaming JSONL in, tasks with scored spans out."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sparse_ner.data.io import DataError
from sparse_ner.core.encoders import build_encoder
from sparse_ner.core.export import export
from sparse_ner.core.tagger import Tagger
from sparse_ner.cli.predict import main
from sparse_ner.core.predict import predict_tasks

WORDS = [["John", "lives", "in", "Paris", "."], ["Hello", "world"]]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    encoder = build_encoder("small", vocab_words=WORDS, min_count=1, hidden=8, word_dim=4, char_dim=4, char_out=4,
                            shape_dim=4)  # fmt: skip
    tagger = Tagger(encoder, ["LOC", "PER"], "bio", dropout=0.0)
    with torch.no_grad():  # an untrained model that predicts some entities
        tagger.emit.bias.copy_(torch.tensor([0.0, 2.0, 0.5, 1.0, 0.5]))
    folder = tmp_path_factory.mktemp("model") / "m"
    export(tagger, folder)
    return folder


def test_predict_tasks_keeps_tokens_and_adds_spans(model_dir: Path) -> None:
    from sparse_ner import load

    tagger = load(model_dir)
    given = {"text": "John  lives", "tokens": [{"text": "John", "start": 0, "end": 4, "id": 0, "ws": True},
                                                {"text": "lives", "start": 6, "end": 11, "id": 1, "ws": False}],
             "answer": "accept", "meta": {"x": 1}}  # fmt: skip
    tasks = [given, {"text": "Mary went to Rome, Italy."}, {"text": ""}]
    out = list(predict_tasks(tagger, tasks, batch_size=2))
    assert len(out) == 3
    assert out[0]["tokens"] == given["tokens"] and out[0]["meta"] == {"x": 1}  # given tokens kept
    assert [t["text"] for t in out[1]["tokens"]] == ["Mary", "went", "to", "Rome", ",", "Italy", "."]
    assert out[2]["spans"] == [] and out[2]["tokens"] == []
    n_spans = 0
    for task in out:
        for span in task["spans"]:
            n_spans += 1
            tokens = task["tokens"]
            assert span["start"] == tokens[span["token_start"]]["start"]
            assert span["end"] == tokens[span["token_end"]]["end"]
            assert span["label"] in ("LOC", "PER") and 0.0 <= span["score"] <= 1.0
    assert n_spans > 0
    assert list(predict_tasks(tagger, tasks, batch_size=64)) == out


def test_predict_reports_bad_tokens(model_dir: Path) -> None:
    from sparse_ner import load

    bad = {"text": "abc", "tokens": [{"text": "abd", "start": 0, "end": 3}]}
    with pytest.raises(DataError, match="in.jsonl:2"):
        list(predict_tasks(load(model_dir), [{"text": "ok"}, bad], source="in.jsonl"))


def test_predict_cli_files_and_stdin(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    lines = [json.dumps({"text": f"John lives in Paris number {i} ."}) for i in range(5)]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n\n")
    assert main([str(model_dir), str(src), "-o", str(dst), "--batch-size", "2"]) == 0
    written = [json.loads(line) for line in dst.read_text().splitlines()]
    assert len(written) == 5 and all("spans" in t for t in written)

    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main([str(model_dir), "-", "-o", "-"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == written


def test_predict_module_runs(model_dir: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "sparse_ner.predict", str(model_dir), "-"],
                         input='{"text": "Paris"}\n', capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["text"] == "Paris"


def test_predictions_are_not_annotations_and_bad_lines_are_skipped_by_line(model_dir: Path, tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    from sparse_ner.core.predict import predict_file

    gold = {"text": "John lives in Paris .", "answer": "accept", "_view_id": "ner_manual", "_input_hash": 5,
            "_task_hash": 6, "_session_id": "s", "spans": []}  # fmt: skip
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(gold) + "\n\n" + json.dumps({"text": "ab", "tokens": [{"start": 0, "end": 9}]}) + "\n"
                   + json.dumps({"text": "Hello world"}) + "\n")  # fmt: skip
    with caplog.at_level("WARNING"):
        n = predict_file(model_dir, src, tmp_path / "out.jsonl")
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert n == 2 and [o["text"] for o in out] == ["John lives in Paris .", "Hello world"]
    assert "in.jsonl:3" in caplog.text  # the real line of the bad task (line 2 is blank)
    assert not {"answer", "_view_id", "_session_id"} & set(out[0]) and out[0]["_input_hash"] == 5
    assert isinstance(out[0]["_task_hash"], int) and out[0]["_task_hash"] != 6
