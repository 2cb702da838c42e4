"""The answer memory (sparse_ner.loop.memory): per-text merging, what counts as asked, pattern
counts, the featurize cache, the reader's checks on each answer, and writing and loading answers.
No model: ``featurize`` is a stand-in that counts its calls."""

from __future__ import annotations

import json
import logging
from collections import Counter

from sparse_ner.data.hashes import input_hash
from sparse_ner.data.tokenize import tokenize
from sparse_ner.loop.memory import AnswerMemory, check_answer

LABELS = ["LOC", "PER"]
TEXTS = ["Alice flew to Paris today .", "Bob met Alice in Berlin .", "Paris is far from Berlin ."]


def task(text: str, start: int, end: int, label: str, answer: str, view: str = "ner", **extra) -> dict:
    toks = tokenize(text)
    span = {"start": toks[start].start, "end": toks[end].end, "token_start": start, "token_end": end, "label": label}
    return {"text": text, "spans": [span], "answer": answer, "_view_id": view, "_input_hash": input_hash(text), **extra}


def make() -> tuple[AnswerMemory, list[list[str]]]:
    calls: list[list[str]] = []
    return AnswerMemory(LABELS, lambda words: calls.append(words) or {"n": len(words)}), calls


def test_answers_merge_per_text_and_features_are_cached():
    memory, calls = make()
    keys = memory.add([task(TEXTS[1], 0, 0, "PER", "accept"), task(TEXTS[0], 3, 3, "LOC", "accept"),
                       task(TEXTS[1], 4, 4, "PER", "reject")])  # fmt: skip
    assert keys == [input_hash(TEXTS[1]), input_hash(TEXTS[0])]  # answer order
    ex = memory.examples[input_hash(TEXTS[1])]
    assert [s.key for s in ex.accepted] == [(0, 0, "PER")] and [s.key for s in ex.rejected] == [(4, 4, "PER")]
    assert memory.n_answers == 3 and len(memory.records[input_hash(TEXTS[1])]) == 2
    assert memory.features[input_hash(TEXTS[0])] == {"n": 6} and len(calls) == 2
    memory.add([task(TEXTS[0], 0, 0, "PER", "accept")])  # the same text again: merged, not re-featurized
    assert [s.key for s in memory.examples[input_hash(TEXTS[0])].accepted] == [(0, 0, "PER"), (3, 3, "LOC")]
    assert len(calls) == 2


def test_a_text_with_nothing_to_learn_has_no_example():
    memory, calls = make()
    assert memory.add([task(TEXTS[2], 0, 0, "LOC", "ignore")]) == []
    assert input_hash(TEXTS[2]) in memory.records and input_hash(TEXTS[2]) not in memory.examples and not calls
    assert memory.add([task(TEXTS[0], 0, 0, "PER", "accept"), task(TEXTS[0], 0, 0, "PER", "reject")]) == []
    assert input_hash(TEXTS[0]) not in memory.examples  # contradiction: both dropped


def test_asked_spans_and_pattern_counts():
    memory, _ = make()
    manual = task(TEXTS[2], 0, 0, "LOC", "accept", view="ner_manual")
    memory.add([task(TEXTS[0], 3, 3, "LOC", "accept", meta={"pattern": 7}),
                task(TEXTS[0], 0, 0, "LOC", "reject", meta={"pattern": 7}),
                task(TEXTS[1], 0, 0, "PER", "ignore", meta={"pattern": 7}), manual])  # fmt: skip
    h0, h1 = input_hash(TEXTS[0]), input_hash(TEXTS[1])
    assert memory.asked == {(h0, 3, 3, "LOC"), (h0, 0, 0, "LOC"), (h1, 0, 0, "PER")}  # binary answers, ignores too
    assert memory.pattern_counts == {"7": Counter(accept=1, reject=1)}  # ignores do not count


def test_an_answer_without_a_key_gets_its_texts_key():
    memory, _ = make()
    bare = {k: v for k, v in task(TEXTS[0], 3, 3, "LOC", "accept").items() if k != "_input_hash"}
    other = {k: v for k, v in task(TEXTS[0], 0, 0, "PER", "accept").items() if k != "_input_hash"}
    memory.add([bare, other])
    (key,) = memory.records  # one text, one key
    assert [r["_input_hash"] for r in memory.records[key]] == [key, key] and "_input_hash" not in bare
    assert len(memory.examples[key].accepted) == 2


def test_screen_skips_logs_and_counts_what_the_reader_could_not_use(caplog):
    memory, _ = make()
    good = task(TEXTS[0], 3, 3, "LOC", "accept")
    assert check_answer(good, set(LABELS)) is None
    assert check_answer(task(TEXTS[0], 3, 3, "LOC", "ignore"), set(LABELS)) is None  # valid, not learned
    assert check_answer(task(TEXTS[0], 3, 3, "LOC", "reject", view="ner_manual"), set(LABELS)) is None
    assert check_answer(task(TEXTS[0], 3, 3, "ORG", "accept"), set(LABELS)) == "unknown_label"
    assert check_answer({**good, "_task_hash": "x"}, set(LABELS)) == "missing_field"
    assert check_answer({**good, "meta": {"ids": {1}}}, set(LABELS)) == "malformed_json"  # cannot be written back
    with caplog.at_level(logging.WARNING, logger="sparse_ner.loop.memory"):
        kept = memory.screen(enumerate([good, "junk", {**good, "spans": None}]), "update(): answer")
    assert kept == [good] and memory.last_skipped == [(1, "malformed_json"), (2, "missing_field")]
    assert memory.skipped == Counter(malformed_json=1, missing_field=1)
    assert caplog.messages[0].startswith("update(): answer 1 skipped: malformed_json")
    assert memory.screen(enumerate([good]), "again") == [good] and memory.last_skipped == []


def test_write_and_load_round_trip_with_bad_lines(tmp_path):
    memory, _ = make()
    memory.add([task(TEXTS[0], 3, 3, "LOC", "accept", meta={"pattern": "p"}), task(TEXTS[1], 0, 0, "PER", "reject")])
    memory.skipped["unknown_label"] += 2
    path = tmp_path / "answers.jsonl"
    memory.write(path)
    state = json.loads(json.dumps(memory.state()))
    assert state == {"n_answers": 2, "pattern_counts": {"p": {"accept": 1}}, "skipped": {"unknown_label": 2}}
    with open(path, "ab") as f:
        f.write(b"{not json\n\n\xff\n")
    loaded, _ = make()
    loaded.load(path, state)
    assert loaded.records == memory.records and loaded.examples.keys() == memory.examples.keys()
    assert loaded.asked == memory.asked and loaded.pattern_counts == memory.pattern_counts
    assert loaded.label_counts == memory.label_counts == {"LOC": Counter(accept=1), "PER": Counter(reject=1)}
    assert loaded.last_skipped == [(3, "malformed_json"), (5, "malformed_json")]  # line numbers
    assert loaded.skipped == Counter(unknown_label=2, malformed_json=2) and loaded.n_answers == 2
    empty, _ = make()
    empty.load(tmp_path / "missing.jsonl", {})  # an exported model: nothing saved
    assert empty.records == {} and empty.n_answers == 0


def test_label_counts_and_starved_labels():
    memory, _ = make()
    answers = [task(TEXTS[0], 3, 3, "LOC", "accept")] * 9 + [task(TEXTS[1], 0, 0, "PER", "accept")]
    answers += [task(TEXTS[1], 0, 0, "PER", "reject")] * 5 + [task(TEXTS[2], 0, 0, "LOC", "ignore")]
    answers += [task(TEXTS[0], 0, 0, "PER", "accept", view="ner_manual")]  # complete annotation: not counted
    memory.add(answers)
    assert memory.label_counts == {"LOC": Counter(accept=9), "PER": Counter(accept=1, reject=5)}
    # 15 binary answers; accepts 9 and 1, mean 5: PER is under 0.3 * 5 but not under 0.2 * 5
    assert memory.starved_labels(after=16, share=0.3) == []  # too few answers yet
    assert memory.starved_labels(after=15, share=0.3) == ["PER"]
    assert memory.starved_labels(after=15, share=0.2) == []
