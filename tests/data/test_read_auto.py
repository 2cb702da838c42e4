"""Evaluation data is read as what it is: binary answers are detected, gold stays gold."""

from __future__ import annotations

import json
from pathlib import Path

from sparse_ner.data.read import is_binary, read_any
from tests.synthetic import _record

WORDS = ["Anna", "lives", "in", "Rome", "."]


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_teach_answers_are_binary_and_not_complete(tmp_path: Path) -> None:
    path = write(tmp_path / "teach.jsonl", [_record(WORDS, [(0, 0, "PER")], "ner", "accept"),
                                            _record(WORDS, [(3, 3, "PER")], "ner", "reject")])  # fmt: skip
    lines: list[str] = []
    (ex,) = read_any(path, gold="auto", report=lines.append)
    assert not ex.complete and [s.key for s in ex.rejected] == [(3, 3, "PER")]
    assert "binary answers: 1 of 1 texts" in lines[0]


def test_accepts_only_teach_answers_are_still_binary(tmp_path: Path) -> None:
    path = write(tmp_path / "teach.jsonl", [_record(WORDS, [(0, 0, "PER")], "ner", "accept")])
    examples = read_any(path, gold="auto", report=lambda m: None)
    assert is_binary(examples) and not examples[0].complete


def test_gold_jsonl_without_view_ids_is_complete(tmp_path: Path) -> None:
    record = _record(WORDS, [(0, 0, "PER"), (3, 3, "LOC")], "x", "accept")
    del record["_view_id"]
    (ex,) = read_any(write(tmp_path / "gold.jsonl", [record]), gold="auto", report=lambda m: None)
    assert ex.complete and len(ex.accepted) == 2


def test_manual_and_binary_texts_keep_their_own_kind(tmp_path: Path) -> None:
    other = ["Bob", "left", "."]
    path = write(tmp_path / "mixed.jsonl", [_record(WORDS, [(0, 0, "PER")], "ner_manual", "accept"),
                                            _record(other, [(0, 0, "PER")], "ner", "accept")])  # fmt: skip
    examples = read_any(path, gold="auto", report=lambda m: None)
    assert [ex.complete for ex in examples] == [True, False]
