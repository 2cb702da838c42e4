import io
import json
from collections import Counter
from pathlib import Path

import pytest
import srsly

from sparse_ner.data.prodigy import (
    DataError,
    ReadStats,
    examples_to_tasks,
    input_hash,
    read_examples,
    read_jsonl,
)
from sparse_ner.data.tokenize import tokenize

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
TEXT = "Anna Smith met Bob Jones in Paris ."  # tokens 0..7


def task(spans, answer="accept", view="ner", text=TEXT, tokens=True, **extra):
    """A db-out record; spans are token spans (start, end inclusive, label)."""
    toks = tokenize(text)
    rec = {
        "text": text,
        "spans": [
            {"start": toks[s].start, "end": toks[e].end, "token_start": s, "token_end": e, "label": lab}
            for s, e, lab in spans
        ],
        "answer": answer,
        "_view_id": view,
    }
    if tokens:
        rec["tokens"] = [{"text": t.text, "start": t.start, "end": t.end, "id": i, "ws": t.ws} for i, t in enumerate(toks)]
    rec.update(extra)
    return rec


def read(tmp_path, records, **kw):
    path = tmp_path / "in.jsonl"
    srsly.write_jsonl(path, records)
    stats = ReadStats()
    examples = read_examples(path, stats=stats, **kw)
    assert stats.total == len(records) == sum(stats.counts.values())
    return examples, stats


def keys(spans):
    return sorted(s.key for s in spans)


def test_bad_json_line_reported_with_line_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(task([(0, 1, "PER")])) + "\n\n{oops\n", encoding="utf8")
    with pytest.raises(DataError, match=r"bad\.jsonl:3:"):
        read_examples(path)
    stats = ReadStats()
    examples = read_examples(path, stats=stats, on_error="skip")
    assert len(examples) == 1 and stats.counts == Counter(used=1, malformed_json=1)
    assert "malformed_json" in stats.report()


def test_non_object_line_is_malformed(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text("[1, 2]\n", encoding="utf8")
    with pytest.raises(DataError, match=":1:"):
        list(read_jsonl(path))


def test_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(task([(0, 1, "PER")])) + "\n"))
    (ex,) = read_examples("-")
    assert keys(ex.accepted) == [(0, 1, "PER")]


def test_merge_by_input_hash_and_text_fallback(tmp_path):
    records = [
        task([(0, 1, "PER")], _input_hash=7),
        task([(3, 4, "ORG")], "reject", _input_hash=7),
        task([(0, 0, "LOC")], text="Paris is nice", _input_hash=8) | {"spans": [{"start": 9, "end": 20, "label": "LOC"}]},
        task([(0, 0, "LOC")], text="Rome is nice"),
        task([(0, 0, "PER")], "reject", text="Rome is nice"),
    ]
    examples, stats = read(tmp_path, records)
    by_text = {ex.text: ex for ex in examples}
    assert len(examples) == 2 and stats.counts == Counter(used=4, span_outside_text=1)
    ex = by_text[TEXT]
    assert ex.input_hash == 7 and not ex.complete
    assert keys(ex.accepted) == [(0, 1, "PER")] and keys(ex.rejected) == [(3, 4, "ORG")]
    assert ex.tasks == records[:2]
    rome = by_text["Rome is nice"]
    assert rome.input_hash == input_hash("Rome is nice")
    assert keys(rome.accepted) == [(0, 0, "LOC")] and keys(rome.rejected) == [(0, 0, "PER")]
    assert "Paris is nice" not in by_text  # its only span was outside the text: counted, not used


def test_accept_and_reject_of_same_span_drop_both(tmp_path):
    records = [
        task([(0, 1, "PER")]),
        task([(3, 4, "PER")]),
        task([(0, 1, "PER")], "reject"),
    ]
    (ex,), stats = read(tmp_path, records)
    assert keys(ex.accepted) == [(3, 4, "PER")] and ex.rejected == []
    assert stats.counts == Counter(used=1, conflicting_answers=2)
    assert stats.span_counts["conflicting_answers"] == 2


def test_only_conflicting_answers_make_no_example(tmp_path):
    examples, stats = read(tmp_path, [task([(0, 1, "PER")], "reject"), task([(0, 1, "PER")])])
    assert examples == [] and stats.counts == Counter(conflicting_answers=2)


def test_overlapping_accepts_keep_first_seen(tmp_path):
    records = [task([(0, 1, "PER")]), task([(1, 1, "PER")]), task([(0, 0, "LOC")]), task([(6, 6, "LOC")])]
    (ex,), stats = read(tmp_path, records)
    assert keys(ex.accepted) == [(0, 1, "PER"), (6, 6, "LOC")]
    assert stats.counts == Counter(used=2, overlapping_accepts=2)


def test_duplicates_are_merged_counted_and_used(tmp_path):
    records = [task([(0, 1, "PER")]), task([(0, 1, "PER")]), task([(3, 3, "PER")], "reject"), task([(3, 3, "PER")], "reject")]
    (ex,), stats = read(tmp_path, records)
    assert keys(ex.accepted) == [(0, 1, "PER")] and keys(ex.rejected) == [(3, 3, "PER")]
    assert stats.counts == Counter(used=4) and stats.span_counts["duplicate_answer"] == 2


def test_manual_annotation_with_binary_answers(tmp_path):
    manual = task([(0, 1, "PER"), (3, 4, "PER"), (6, 6, "LOC")], view="ner_manual")
    records = [
        task([(0, 1, "PER")]),  # agrees with the manual annotation: duplicate, used
        manual,
        task([(6, 6, "ORG")], "reject"),  # consistent reject: kept
        task([(3, 3, "PER")]),  # accept not in the manual annotation: conflicting
    ]
    (ex,), stats = read(tmp_path, records)
    assert ex.complete
    assert keys(ex.accepted) == [(0, 1, "PER"), (3, 4, "PER"), (6, 6, "LOC")]
    assert keys(ex.rejected) == [(6, 6, "ORG")]
    assert stats.counts == Counter(used=3, conflicting_answers=1)


def test_reject_of_a_manual_span_makes_example_incomplete(tmp_path):
    manual = task([(0, 1, "PER"), (6, 6, "LOC")], view="ner_manual")
    (ex,), stats = read(tmp_path, [manual, task([(6, 6, "LOC")], "reject")])
    assert not ex.complete
    assert keys(ex.accepted) == [(0, 1, "PER")] and ex.rejected == []
    assert stats.counts == Counter(used=1, conflicting_answers=1)


def test_disagreeing_manual_annotations_are_both_dropped(tmp_path):
    records = [task([(0, 1, "PER")], view="ner_manual"), task([(0, 0, "PER")], view="ner_manual"), task([(6, 6, "LOC")])]
    (ex,), stats = read(tmp_path, records)
    assert not ex.complete and keys(ex.accepted) == [(6, 6, "LOC")]
    assert stats.counts == Counter(used=1, conflicting_answers=2)


def test_complete_argument_overrides(tmp_path):
    records = [task([(0, 1, "PER")]), task([(3, 4, "PER")], view="ner_manual", text="Ann met Bob Jones here")]
    examples, _ = read(tmp_path, records, complete=True)
    assert all(ex.complete for ex in examples)
    examples, _ = read(tmp_path, records, complete=False)
    assert not any(ex.complete for ex in examples)
    examples, _ = read(tmp_path, records)
    assert sorted(ex.complete for ex in examples) == [False, True]


def test_every_skip_reason_is_counted(tmp_path):
    bad_char = task([(0, 1, "PER")])
    bad_char["spans"][0]["end"] = 7  # "Anna Sm"
    disagree = task([(0, 1, "PER")])
    disagree["spans"][0]["token_end"] = 2
    bad_tokens = task([(0, 0, "PER")])
    bad_tokens["tokens"][0]["text"] = "Anne"
    manual_unknown = task([(0, 1, "PER"), (6, 6, "GPE")], view="ner_manual", text="Anna Smith met Bob Jones in Rome .")
    records = [
        task([(0, 1, "PER")], "ignore"),
        task([(0, 1, "PER")], "reject", view="ner_manual"),
        task([], text="   "),
        {"text": TEXT, "spans": []},  # no answer
        {"answer": "accept"},  # no text
        bad_tokens,
        task([(0, 0, "PER")], view="classification"),
        task([]),
        task([(0, 0, "PER"), (3, 3, "PER")], "reject"),
        task([(0, 0, "PER")], text="Other text", _input_hash=42),
        task([(0, 0, "PER")], text="Another one", _input_hash=42),
        task([(0, 0, "PER")], text="Other text", _input_hash=42, tokens=False)
        | {"tokens": [{"text": "Other text", "start": 0, "end": 10}], "spans": [{"start": 0, "end": 10, "label": "PER"}]},
        task([(0, 0, "PER")]) | {"spans": [{"start": 30, "end": 99, "label": "PER"}]},
        bad_char,
        disagree,
        task([(0, 0, "GPE")]),
        manual_unknown,
        task([(0, 0, "PER"), (0, 1, "PER")], view="ner_manual", text="Anna Smith met Bob Jones in Oslo ."),
    ]
    examples, stats = read(tmp_path, records, labels=["PER", "LOC", "ORG"])
    assert stats.counts == Counter(
        ignored_answer=1,
        rejected_manual_answer=1,
        empty_text=1,
        missing_field=2,
        bad_tokens=1,
        unsupported_view=1,
        no_spans=1,
        ambiguous_reject=1,
        used=2,  # "Other text" and the manual annotation with one unknown label
        text_mismatch=1,
        token_mismatch=1,
        span_outside_text=1,
        span_not_on_token_boundaries=1,
        span_offsets_disagree=1,
        unknown_label=1,
        overlapping_accepts=1,
    )
    assert stats.span_counts["unknown_label"] == 1
    (manual,) = [ex for ex in examples if ex.complete]
    assert keys(manual.accepted) == [(0, 1, "PER")]
    report = stats.report()
    for reason in stats.counts:
        assert reason in report


def test_spans_with_token_offsets_only_and_default_tokenizer(tmp_path):
    text = "吴海波先生，2004年任职"
    rec = {"text": text, "spans": [{"token_start": 0, "token_end": 2, "label": "NAME"}], "answer": "accept", "_view_id": "ner"}
    rec2 = {"text": text, "spans": [{"start": 6, "end": 10, "label": "DATE"}], "answer": "reject"}
    (ex,), stats = read(tmp_path, [rec, rec2])
    (span,) = ex.accepted
    assert (span.start, span.end, text[span.start : span.end]) == (0, 3, "吴海波")
    (rej,) = ex.rejected
    assert rej.key == (6, 6, "DATE") and ex.tokens[6].text == "2004"


def test_examples_to_tasks_round_trip(tmp_path):
    records = [
        task([(0, 1, "PER")], view="ner_manual", text="Anna Smith met Bob"),
        task([(0, 1, "PER")]),
        task([(3, 4, "LOC")], "reject"),
    ]
    examples, _ = read(tmp_path, records)
    out = list(examples_to_tasks(examples))
    manual = [r for r in out if r["_view_id"] == "ner_manual"]
    assert len(manual) == 1 and manual[0]["answer"] == "accept"
    for r in out:
        assert -(2**31) <= r["_input_hash"] < 2**31 and -(2**31) <= r["_task_hash"] < 2**31
    again, stats = read(tmp_path, out)
    assert stats.counts == Counter(used=3)
    summary = lambda exs: sorted((e.text, keys(e.accepted), keys(e.rejected), e.complete) for e in exs)
    assert summary(again) == summary(examples)


def test_generated_tasks_for_examples_without_tasks(tmp_path):
    examples, _ = read(tmp_path, [task([(0, 1, "PER")]), task([(3, 4, "LOC")], "reject")])
    (ex,) = examples
    ex.tasks = []
    out = list(examples_to_tasks([ex]))
    assert [(r["answer"], r["_view_id"], r["spans"][0]["label"]) for r in out] == [("accept", "ner", "PER"), ("reject", "ner", "LOC")]
    assert out == list(examples_to_tasks([ex]))  # stable hashes
    assert out[0]["_input_hash"] == out[1]["_input_hash"] != out[0]["_task_hash"]


@pytest.mark.skipif(not (SHARED / "teach").is_dir(), reason="shared/data/teach not available")
def test_conll_teach_file():
    path = SHARED / "teach" / "conll2003_train_teach.jsonl"
    answers: dict[int, set] = {}
    n = 0
    for line in path.open(encoding="utf8"):
        rec = json.loads(line)
        answers.setdefault(rec["_input_hash"], set()).add(rec["answer"])
        n += 1
    stats = ReadStats()
    examples = read_examples(path, stats=stats)
    assert stats.total == n == 18540
    only_ignored = sum(1 for a in answers.values() if a == {"ignore"})
    assert len(examples) == len(answers) - only_ignored
    assert stats.counts["ignored_answer"] == 377
    assert stats.counts["used"] == n - 377
    assert not any(ex.complete for ex in examples)
    assert sum(len(ex.accepted) for ex in examples) + sum(len(ex.rejected) for ex in examples) + stats.span_counts["duplicate_answer"] == n - 377
