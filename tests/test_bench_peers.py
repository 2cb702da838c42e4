"""scripts/bench_peers.py: the peers' data comes from the teach file asked for, and their character spans
map to words as documented (the peers themselves run in their own venv, not here)."""

from __future__ import annotations

import json

import pytest
import srsly

def task(text: str, span: tuple[int, int, int, int, str], answer: str, input_hash: int) -> dict:
    words, pos, tokens = text.split(), 0, []
    for i, w in enumerate(words):
        tokens.append({"text": w, "start": pos, "end": pos + len(w), "id": i, "ws": True})
        pos += len(w) + 1
    start, end, ts, te, label = span
    return {"text": text, "tokens": tokens, "answer": answer, "_input_hash": input_hash, "_task_hash": hash((text, span)),
            "_view_id": "ner", "spans": [{"start": start, "end": end, "token_start": ts, "token_end": te, "label": label}]}


def test_prepare_reads_the_teach_file_keeping_accepts_only(tmp_path, load_script):
    bench = load_script("bench_peers")
    if not (bench.DEV.exists() and bench.TEST.exists()):
        pytest.skip(f"no CoNLL-2003 dev/test at {bench.DEV.parent} (../shared/data is absent)")
    teach = tmp_path / "u_seed3" / "answers_uncertainty.jsonl"
    teach.parent.mkdir()
    srsly.write_jsonl(teach, [task("John lives in Paris", (0, 4, 0, 0, "PER"), "accept", 1),
                              task("John lives in Paris", (14, 19, 3, 3, "ORG"), "reject", 1),
                              task("Nothing here", (0, 7, 0, 0, "LOC"), "reject", 2),
                              task("Rome is old", (0, 4, 0, 0, "LOC"), "accept", 3)])
    assert bench.corpus_name(teach) == "conll-u_seed3" and bench.corpus_name(bench.TEACH) == "conll"
    folder, stats, dev, test = bench.prepare(3, 5, tmp_path / "work", teach)  # the first 3 answers
    assert folder.name == "data_conll-u_seed3_3_eval5"
    rows = [json.loads(line) for line in (folder / "train.jsonl").open()]
    assert rows == [{"text": "John lives in Paris", "words": [[0, 4], [5, 10], [11, 13], [14, 19]],
                     "spans": [[0, 4, "PER"]]},
                    {"text": "Nothing here", "words": [[0, 7], [8, 12]], "spans": []}]  # all-reject text: no span
    assert stats["train_texts"] == 2 and stats["train_spans"] == 1 and stats["rejects_dropped"] == 2
    assert len(dev) == len(test) == 5


def test_word_spans_widen_to_whole_words_and_drop_overlaps(load_script):
    bench = load_script("bench_peers")

    class T:
        def __init__(self, start, end):
            self.start, self.end = start, end

    tokens = [T(0, 4), T(5, 10), T(11, 13), T(14, 19)]  # "John lives in Paris"
    counts = {"snapped": 0, "overlapping": 0, "empty": 0}
    got = bench.word_spans([[0, 4, "PER"], [15, 19, "LOC"], [12, 16, "ORG"], [4, 5, "MISC"]], tokens, counts)
    assert got == [(0, 0, "PER"), (2, 3, "ORG")]  # "ORG" sorts before "LOC" (start 12 < 15) and wins the overlap
    assert counts == {"snapped": 2, "overlapping": 1, "empty": 1}
