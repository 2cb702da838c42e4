from collections import Counter
from pathlib import Path

import pytest
import srsly

from sparse_ner.data.columns import make_example
from sparse_ner.data.prodigy import ReadStats, read_examples
from sparse_ner.cli.simulate_teach import main as simulate_main
from sparse_ner.data.simulate_teach import simulate_teach
from sparse_ner.tags import encode_spans

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = [
    ("EU rejects German call to boycott British lamb .".split(), [(0, 0, "ORG"), (2, 2, "MISC"), (6, 6, "MISC")]),
    ("Peter Blackburn met Anna Smith Jones in Paris".split(), [(0, 1, "PER"), (3, 5, "PER"), (7, 7, "LOC")]),
    ("The Big Apple is New York City".split(), [(4, 6, "LOC")]),
    ("nothing Here at all".split(), []),
]


def gold(n_copies=30):
    examples = []
    for k in range(n_copies):
        for words, spans in SENTENCES:
            words = words + [f"w{k}"]  # distinct texts
            examples.append(make_example(words, encode_spans(len(words), spans, "iob2"), "iob2"))
    return examples


def check_answers(tasks, examples):
    by_text = {ex.text: {s.key for s in ex.accepted} for ex in examples}
    kinds = Counter()
    for t in tasks:
        assert t["_view_id"] == "ner" and len(t["spans"]) == 1
        sp = t["spans"][0]
        key = (sp["token_start"], sp["token_end"], sp["label"])
        toks = t["tokens"]
        assert (sp["start"], sp["end"]) == (toks[key[0]]["start"], toks[key[1]]["end"])
        gold_keys = by_text[t["text"]]
        if t["answer"] == "accept":
            assert key in gold_keys
        elif t["answer"] == "reject":
            assert key not in gold_keys
            same_tokens = {(s, e) for s, e, _ in gold_keys}
            kinds["wrong_label" if key[:2] in same_tokens else "other"] += 1
        else:
            assert t["answer"] == "ignore"
        kinds[t["answer"]] += 1
    return kinds


def test_answers_are_correct_with_respect_to_gold():
    examples = gold()
    tasks = list(simulate_teach(examples, seed=0, ignore_rate=0.05))
    kinds = check_answers(tasks, examples)
    assert kinds["accept"] > 0 and kinds["reject"] > 0 and kinds["ignore"] > 0
    assert kinds["wrong_label"] > 0 and kinds["other"] > 0
    assert len(tasks) > len(examples)  # some texts get several questions
    assert {t["meta"]["source"] for t in tasks} == {"gold"}


def test_no_span_asked_twice_and_reads_back_without_conflicts(tmp_path):
    examples = gold()
    tasks = list(simulate_teach(examples, seed=3, more_rate=0.9))
    asked = Counter((t["_input_hash"], t["_task_hash"]) for t in tasks)
    assert max(asked.values()) == 1
    srsly.write_jsonl(tmp_path / "t.jsonl", tasks)
    stats = ReadStats()
    read_examples(tmp_path / "t.jsonl", stats=stats)
    assert set(stats.counts) <= {"used", "ignored_answer"}
    assert stats.span_counts["conflicting_answers"] == stats.span_counts["duplicate_answer"] == 0


def test_seeded_and_shuffled():
    examples = gold()
    a = list(simulate_teach(examples, seed=1))
    assert a == list(simulate_teach(examples, seed=1))
    assert a != list(simulate_teach(examples, seed=2))
    sentences = [t["meta"]["sentence"] for t in a]
    assert sentences != sorted(sentences)


def test_rates_are_configurable():
    examples = gold()
    assert all(t["answer"] == "ignore" for t in simulate_teach(examples, ignore_rate=1.0))
    no_accepts = list(simulate_teach(examples, accept_rate=0.0, ignore_rate=0.0))
    assert {t["answer"] for t in no_accepts} == {"reject"}
    single = list(simulate_teach(examples, more_rate=0.0))
    assert len(single) == len(examples)


def test_refuses_sparse_examples():
    ex = gold(1)[0]
    ex.complete = False
    with pytest.raises(ValueError, match="not complete"):
        list(simulate_teach([ex]))


def test_cli(tmp_path):
    path = tmp_path / "gold.txt"
    path.write_text("EU I-ORG\nrejects O\nGerman I-MISC\ncall O\n\nPeter I-PER\nBlackburn I-PER\n", encoding="utf8")
    assert simulate_main([str(path), str(tmp_path / "out.jsonl"), "--encoding", "iob1", "--seed", "0"]) == 0
    tasks = list(srsly.read_jsonl(tmp_path / "out.jsonl"))
    check_answers(tasks, [make_example("EU rejects German call".split(), ["B-ORG", "O", "B-MISC", "O"]),
                          make_example(["Peter", "Blackburn"], ["B-PER", "I-PER"])])
    assert tasks and tasks[0]["meta"]["source"] == "gold"


@pytest.mark.skipif(not (ROOT / "examples" / "wikigold").is_dir(), reason="examples/wikigold not built")
def test_shipped_wikigold_teach_answers_match_gold():
    train = read_examples(ROOT / "examples" / "wikigold" / "train.jsonl", complete=True)
    tasks = list(srsly.read_jsonl(ROOT / "examples" / "wikigold" / "train_teach.jsonl"))
    kinds = check_answers(tasks, train)
    assert kinds["accept"] > 0 and kinds["reject"] > 0
