"""Merging reviewed corrections into the original answers: replaced, kept, unmatched, round trips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sparse_ner.data.prodigy import read_examples
from sparse_ner.review.merge import merge_corrections as merge
from sparse_ner.review.tasks import strip_predicted

from synthetic import _record


def _with_hash(record: dict, h: int, task: int) -> dict:
    return {**record, "_input_hash": h, "_task_hash": task}


ORIGINAL = [
    _with_hash(_record(["John", "lives", "in", "Paris", "."], [(0, 0, "PER")], "ner", "accept"), 1, 10),
    _with_hash(_record(["John", "lives", "in", "Paris", "."], [(3, 3, "PER")], "ner", "reject"), 1, 11),
    _with_hash(_record(["Mary", "flew", "to", "Rome", "."], [(0, 0, "PER"), (3, 3, "PER")], "ner_manual", "accept"), 2, 20),
    _with_hash(_record(["Nobody", "knows", "."], [], "ner_manual", "accept"), 3, 30),
]


def review_of(record: dict, spans: list[tuple[int, int, str]], complete: bool, rejected: list[dict] = ()) -> dict:
    """A review task as the reviewer saved it (before the before_db hook), with a PREDICTED span."""
    task = _record([t["text"] for t in record["tokens"]], spans + [(0, 0, "LOC:PREDICTED")], "spans_manual", "accept")
    return {**task, "_input_hash": record["_input_hash"], "_task_hash": 99, "meta": {"review_score": 1.0},
            "_review": {"complete": complete, "rejected": list(rejected)}}  # fmt: skip


def test_corrections_replace_by_input_hash_and_keep_the_rest() -> None:
    fix = review_of(ORIGINAL[2], [(0, 0, "PER"), (3, 3, "LOC")], complete=True)
    stray = {**review_of(ORIGINAL[3], [], complete=True), "_input_hash": 12345}
    merged, replaced, counts = merge(ORIGINAL, [fix, stray])
    assert counts["replaced"] == 1 and counts["kept"] == 3 and counts["unmatched"] == 1
    assert replaced == [ORIGINAL[2]]
    assert merged[:2] == ORIGINAL[:2] and merged[3] == ORIGINAL[3]  # kept records are untouched, in order
    assert [s["label"] for s in merged[2]["spans"]] == ["PER", "LOC"]  # PREDICTED spans are stripped
    assert merged[4]["_input_hash"] == 12345  # nothing is lost
    merged, _, counts = merge(ORIGINAL, [fix, stray], drop_unmatched=True)
    assert len(merged) == 4 and counts["unmatched"] == 1


def test_unchanged_accept_round_trips_binary_and_complete(tmp_path: Path) -> None:
    rejected = [s for s in ORIGINAL[1]["spans"]]
    tasks = [review_of(ORIGINAL[0], [(0, 0, "PER")], complete=False, rejected=rejected),
             review_of(ORIGINAL[2], [(0, 0, "PER"), (3, 3, "PER")], complete=True)]  # fmt: skip
    saved = strip_predicted(tasks)  # what Prodigy stores with the before_db hook
    merged, _, counts = merge(ORIGINAL, saved)
    assert counts["replaced"] == 3 and counts["kept"] == 1
    for name, records in (("original", ORIGINAL), ("merged", merged)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    before = {ex.input_hash: ex for ex in read_examples(tmp_path / "original.jsonl")}
    after = {ex.input_hash: ex for ex in read_examples(tmp_path / "merged.jsonl")}
    assert before.keys() == after.keys()
    for h in before:
        a, b = before[h], after[h]
        assert ([s.key for s in a.accepted], [s.key for s in a.rejected], a.complete) == \
               ([s.key for s in b.accepted], [s.key for s in b.rejected], b.complete), h  # fmt: skip


def test_binary_correction_and_reject_accepted_by_reviewer() -> None:
    rejected = [s for s in ORIGINAL[1]["spans"]]  # "Paris" PER was rejected; the reviewer accepts Paris LOC
    fix = review_of(ORIGINAL[0], [(0, 0, "PER"), (3, 3, "LOC")], complete=False, rejected=rejected)
    merged, _, counts = merge(ORIGINAL, [fix])  # saved without the hook: merge cleans it the same way
    out = [r for r in merged if r["_input_hash"] == 1]
    assert [(r["_view_id"], r["answer"], [s["label"] for s in r["spans"]]) for r in out] == [
        ("ner", "accept", ["PER", "LOC"]), ("ner", "reject", ["PER"])]
    # the reviewer accepting a previously rejected span drops the old reject
    fix2 = review_of(ORIGINAL[0], [(0, 0, "PER"), (3, 3, "PER")], complete=False, rejected=rejected)
    out = [r for r in merge(ORIGINAL, [fix2])[0] if r["_input_hash"] == 1]
    assert [r["answer"] for r in out] == ["accept"]


def test_ignored_superseded_and_task_key() -> None:
    first = review_of(ORIGINAL[2], [(0, 0, "ORG")], complete=True)
    second = review_of(ORIGINAL[2], [(0, 0, "PER")], complete=True)
    skipped = {**review_of(ORIGINAL[3], [(0, 0, "PER")], complete=True), "answer": "ignore"}
    merged, _, counts = merge(ORIGINAL, [first, second, skipped])
    assert counts["superseded"] == 1 and counts["ignored"] == 1 and counts["replaced"] == 1
    assert [s["label"] for s in merged[2]["spans"]] == ["PER"] and merged[3] == ORIGINAL[3]
    by_task = {**ORIGINAL[1], "answer": "accept"}  # flip one binary answer, matched by _task_hash
    merged, replaced, counts = merge(ORIGINAL, [by_task], key="task")
    assert replaced == [ORIGINAL[1]] and merged[1]["answer"] == "accept" and merged[0] == ORIGINAL[0]


def test_merge_cli_prints_counts(tmp_path: Path) -> None:
    original, corrections, out = tmp_path / "o.jsonl", tmp_path / "c.jsonl", tmp_path / "m.jsonl"
    original.write_text("".join(json.dumps(r) + "\n" for r in ORIGINAL))
    fix = review_of(ORIGINAL[2], [(0, 0, "PER")], complete=True)
    corrections.write_text(json.dumps(fix) + "\n")
    res = subprocess.run([sys.executable, "-m", "sparse_ner.merge", str(original), str(corrections), "-o", str(out),
                          "--replaced", str(tmp_path / "r.jsonl")], capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "1 replaced, 3 kept" in res.stderr and "0 keys unmatched" in res.stderr
    assert len(out.read_text().splitlines()) == 4
    assert json.loads((tmp_path / "r.jsonl").read_text()) == ORIGINAL[2]


def test_malformed_corrections_replace_nothing_and_kept_lines_are_byte_for_byte(tmp_path):
    from sparse_ner.review.merge import merge

    original = tmp_path / "orig.jsonl"
    lines = ['{"text": "Bob ran .", "_input_hash": 1, "answer": "accept", "_view_id": "ner", "meta": {"score": 0.827}, '
             '"spans": [{"start": 0, "end": 3, "token_start": 0, "token_end": 0, "label": "PER"}]}',
             '{"text":"Ann sat .","_input_hash":2,"answer":"accept","_view_id":"ner","spans":[{"start":0,"end":3,'
             '"token_start":0,"token_end":0,"label":"ORG"}]}']  # fmt: skip
    original.write_text("\n".join(lines) + "\n")
    bad = [{"text": "Ann sat .", "_input_hash": 2, "spans": None, "answer": "accept"},
           {"text": "Ann sat .", "_input_hash": 2, "spans": [], "answer": "maybe"},
           {"text": "Ann sat .", "_input_hash": 2, "spans": []}]  # fmt: skip
    corrections = tmp_path / "fix.jsonl"
    corrections.write_text("".join(json.dumps(b) + "\n" for b in bad))
    counts = merge(original, corrections, tmp_path / "out.jsonl")
    assert counts["malformed"] == 3 and counts["replaced"] == 0 and counts["kept"] == 2
    assert (tmp_path / "out.jsonl").read_text() == original.read_text()  # byte for byte, 0.827 included
