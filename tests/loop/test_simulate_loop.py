"""The loop simulator: the oracle, each strategy on a tiny gold corpus, CSV/PNG outputs, the config."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest


from sparse_ner.loop import simulate as sim  # noqa: E402
from sparse_ner.data.columns import read_columns  # noqa: E402
from sparse_ner.data.simulate_teach import simulate_teach  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
SENTENCES = [
    [("Alice", "B-PER"), ("flew", "O"), ("to", "O"), ("Paris", "B-LOC"), (".", "O")],
    [("Bob", "B-PER"), ("Smith", "I-PER"), ("left", "O"), ("Berlin", "B-LOC"), (".", "O")],
    [("Rain", "O"), ("in", "O"), ("Paris", "B-LOC"), ("again", "O"), (".", "O")],
    [("Carol", "B-PER"), ("met", "O"), ("Bob", "B-PER"), ("in", "O"), ("Rome", "B-LOC"), (".", "O")],
]


@pytest.fixture
def corpus(tmp_path: Path) -> dict:
    gold = tmp_path / "gold.txt"
    lines = []
    for i in range(6):
        for sent in SENTENCES:
            lines += [f"{w}{i if w == 'again' else ''} {t}" for w, t in sent] + [""]
    gold.write_text("\n".join(lines) + "\n")
    static = tmp_path / "static.jsonl"
    static.write_text("".join(json.dumps(t) + "\n" for t in simulate_teach(read_columns(gold, "bio"), seed=0)))
    patterns = tmp_path / "patterns.jsonl"
    patterns.write_text(json.dumps({"label": "LOC", "pattern": "Paris"}) + "\n")
    return {
        "train": str(gold), "dev": str(gold), "encoding": "bio", "labels": ["LOC", "PER"], "patterns": str(patterns),
        "static": str(static), "tagger": {"encoder_options": {"word_dim": 16, "char_out": 8, "hidden": 16}},
        "strategies": list(sim.STRATEGIES), "answers": 20, "eval_every": 10, "dev_limit": 8,
        "output": str(tmp_path / "out"), "online": {"steps": 1},
    }  # fmt: skip


def test_oracle_accepts_exactly_gold_spans():
    gold = {7: {(0, 0, "PER"), (3, 4, "LOC")}}

    def ask(s: int, e: int, label: str) -> str:
        task = {"_input_hash": 7, "spans": [{"token_start": s, "token_end": e, "label": label}]}
        return sim.oracle(task, gold)["answer"]

    assert ask(0, 0, "PER") == "accept" and ask(3, 4, "LOC") == "accept"
    assert ask(0, 0, "LOC") == "reject" and ask(3, 3, "LOC") == "reject" and ask(0, 1, "PER") == "reject"


def test_every_strategy_runs_and_writes_csv_and_png(corpus):
    cfg = sim.load_config(None, corpus)
    rows = sim.simulate(cfg, log=None)
    out = Path(cfg["output"])
    assert (out / "curves.png").stat().st_size > 0 and json.loads((out / "config.json").read_text())["answers"] == 20
    with open(out / "curves.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows)
    for strategy in sim.STRATEGIES:
        mine = [r for r in rows if r["strategy"] == strategy]
        assert mine[0]["answers"] == 0 and mine[0]["accepts"] == 0
        assert [r["answers"] for r in mine] == sorted(r["answers"] for r in mine)
        assert mine[-1]["answers"] <= 20 and all(0.0 <= r["f1"] <= 1.0 for r in mine)
    patterns_rows = [r for r in rows if r["strategy"] == "patterns"]
    # "Paris" is always a LOC here: every pattern question is accepted, and every accept is a LOC
    assert patterns_rows[-1]["answers"] > 0 and patterns_rows[-1]["accepts"] == patterns_rows[-1]["answers"]
    assert patterns_rows[-1]["accepts_by_label"] == {"LOC": patterns_rows[-1]["accepts"], "PER": 0}
    for row, line in zip(rows, table):  # the per-label columns: accepts add up, F1 as the metric gives it
        assert sum(row["accepts_by_label"].values()) == row["accepts"] == int(line["accepts"])
        assert [int(line[f"accepts_{k}"]) for k in ("LOC", "PER")] == [row["accepts_by_label"][k] for k in ("LOC", "PER")]
        assert [float(line[f"f1_{k}"]) for k in ("LOC", "PER")] == [row["f1_by_label"][k] for k in ("LOC", "PER")]
        assert all(0.0 <= v <= 1.0 for v in row["f1_by_label"].values())
        if row["f1"] == 0.0:
            assert set(row["f1_by_label"].values()) == {0.0}
    assert 0 < [r["answers"] for r in rows if r["strategy"] == "random"][-1] <= 20  # the stream may run out


def test_answers_are_written_as_a_db_out_file_the_trainer_reads(corpus):
    from sparse_ner.data.read import read_any

    cfg = sim.load_config(None, {**corpus, "strategies": ["uncertainty", "random"]})
    rows = sim.simulate(cfg, log=None)
    out = Path(cfg["output"])
    gold = {ex.input_hash or sim.input_hash(ex.text): {s.key for s in ex.accepted}
            for ex in sim.read_gold(corpus["train"], "bio")}  # fmt: skip
    for strategy in ("uncertainty", "random"):
        records = [json.loads(line) for line in (out / f"answers_{strategy}.jsonl").read_text().splitlines()]
        last = [r for r in rows if r["strategy"] == strategy][-1]
        assert len(records) == last["answers"] > 0
        assert sum(r["answer"] == "accept" for r in records) == last["accepts"]
        for r in records:  # one span each, answered as the oracle answers it
            (span,) = r["spans"]
            is_gold = (span["token_start"], span["token_end"], span["label"]) in gold[r["_input_hash"]]
            assert r["answer"] == ("accept" if is_gold else "reject") and r["_view_id"] == "ner"
            assert "score" in r["meta"] and r["_task_hash"]
        examples = read_any(out / f"answers_{strategy}.jsonl", gold=False, report=lambda m: None)
        # the fixture repeats texts, so the reader merges the answers of one text (by _input_hash)
        answered = {a: {(r["_input_hash"], *(r["spans"][0][k] for k in ("token_start", "token_end", "label")))
                         for r in records if r["answer"] == a} for a in ("accept", "reject")}  # fmt: skip
        assert sum(len(ex.accepted) for ex in examples) == len(answered["accept"]) > 0
        assert sum(len(ex.rejected) for ex in examples) == len(answered["reject"])
    sim.simulate(sim.load_config(None, {**corpus, "strategies": ["random"], "answers": 10}), log=None)
    assert len((out / "answers_random.jsonl").read_text().splitlines()) == 10  # a new run starts the file anew


def test_several_dev_files_are_read_one_after_the_other(corpus, tmp_path, monkeypatch):
    second = tmp_path / "second.txt"
    second.write_text("Zed B-PER\nran O\n. O\n\n")
    seen = []
    own = sim.dev_f1
    monkeypatch.setattr(sim, "dev_f1", lambda online, dev: seen.append([ex.words for ex in dev]) or own(online, dev))
    cfg = sim.load_config(None, {**corpus, "dev": [corpus["dev"], str(second)], "dev_limit": 0,
                                 "strategies": ["random"], "answers": 10})  # fmt: skip
    sim.simulate(cfg, log=None)
    assert seen and all(words == seen[0] for words in seen)
    assert len(seen[0]) == 6 * len(SENTENCES) + 1  # every sentence of both files, the first file first
    assert seen[0][0] == ["Alice", "flew", "to", "Paris", "."] and seen[0][-1] == ["Zed", "ran", "."]


def test_unknown_strategy_and_bad_config(corpus, tmp_path):
    with pytest.raises(ValueError, match="unknown keys"):
        bad = tmp_path / "bad.yaml"
        bad.write_text("train: x\nnonsense: 1\n")
        sim.load_config(bad, {})
    with pytest.raises(ValueError, match="needs 'labels'"):
        sim.load_config(None, {"train": "x", "dev": "y"})
    with pytest.raises(ValueError, match="unknown strategy"):
        sim.run("bogus", sim.load_config(None, corpus), [], [])


def test_wikigold_config_reads_the_bundled_files():
    cfg = sim.load_config(ROOT / "configs" / "simulate_wikigold_minilm.yaml", {})
    train = sim.read_gold(ROOT / cfg["train"])
    dev = [ex for path in cfg["dev"] for ex in sim.read_gold(ROOT / path)]
    assert len(train) > 1000 and len(dev) > 300 and all(ex.complete for ex in train + dev)
    labels = {s.label for ex in dev for s in ex.accepted}
    assert labels == set(cfg["labels"])
    from sparse_ner.loop.patterns import read_patterns

    assert {p.label for p in read_patterns(ROOT / cfg["patterns"], cfg["labels"])} == labels


@pytest.mark.skipif(not (DATA / "conll2003").exists(), reason="../shared/data/conll2003 is absent")
def test_conll_config_and_patterns_file():
    cfg = sim.load_config(ROOT / "configs" / "simulate_conll.yaml", {})
    assert cfg["batch_size"] == 10 and set(cfg["strategies"]) == set(sim.STRATEGIES)
    from sparse_ner.loop.patterns import PatternMatcher, read_patterns

    matcher = PatternMatcher(read_patterns(ROOT / cfg["patterns"], cfg["labels"]))
    dev = list(read_columns(DATA / "conll2003" / "dev.txt", "iob1"))[:400]
    hits = [(m[:3], {s.key for s in ex.accepted}) for ex in dev for m in matcher(ex.words)]
    assert len(hits) >= 20
    assert sum(key in gold for key, gold in hits) / len(hits) > 0.6  # a useful cold start


def test_dev_f1_gives_each_labels_f1(corpus):
    from contextlib import nullcontext
    from types import SimpleNamespace

    dev = [ex for ex in sim.read_gold(corpus["train"], "bio") if ex.tokens]
    n_per = sum(s.label == "PER" for ex in dev for s in ex.accepted)
    n_loc = sum(s.label == "LOC" for ex in dev for s in ex.accepted)
    # a model that finds every PER and calls the first LOC of each text a PER too
    preds = [[(*s.key[:2], "PER", 1.0) for s in ex.accepted if s.label == "PER"]
             + [(*s.key[:2], "PER", 1.0) for s in ex.accepted if s.label == "LOC"][:1] for ex in dev]  # fmt: skip
    online = SimpleNamespace(labels=["LOC", "PER"], learner=SimpleNamespace(averaged_weights=nullcontext),
                             tagger=SimpleNamespace(tag=lambda examples, batch_size: preds))  # fmt: skip
    f1 = sim.dev_f1(online, dev)
    wrong = len(dev)  # one mislabelled LOC per text
    p_per, r_per = n_per / (n_per + wrong), 1.0
    assert f1["PER_f1"] == pytest.approx(2 * p_per * r_per / (p_per + r_per))
    assert f1["LOC_f1"] == 0.0
    assert f1["recall"] == pytest.approx(n_per / (n_per + n_loc))


def test_manual_texts_are_annotated_completely_first_and_leave_the_stream(corpus):
    cfg = sim.load_config(None, {**corpus, "strategies": ["random"], "manual": 6, "answers": 12,
                                       "idle_steps": 100})
    rows = sim.simulate(cfg, log=None)
    records = [json.loads(line) for line in (Path(cfg["output"]) / "answers_random.jsonl").read_text().splitlines()]
    manual, binary = records[:6], records[6:]
    assert [r["_view_id"] for r in manual] == ["ner_manual"] * 6 and all(r["_view_id"] == "ner" for r in binary)
    gold = {ex.input_hash or sim.input_hash(ex.text): {s.key for s in ex.accepted}
            for ex in sim.read_gold(corpus["train"], "bio")}  # fmt: skip
    for r in manual:  # every gold entity of the text, with character offsets on its tokens
        assert {(s["token_start"], s["token_end"], s["label"]) for s in r["spans"]} == gold[r["_input_hash"]]
        assert all(r["text"][s["start"]:s["end"]] for s in r["spans"]) and r["answer"] == "accept"
    assert not {r["meta"]["sentence"] for r in manual} & {r["meta"]["sentence"] for r in binary}
    assert len(binary) == rows[-1]["answers"] and rows[0]["answers"] == 0
    assert rows[0]["f1"] > 0.0  # the complete texts are learned before the first question


@pytest.mark.parametrize("manual", [0, 2])
def test_a_new_model_is_warm_started_on_the_streams_first_texts_as_teach_does(corpus, manual, monkeypatch):
    from sparse_ner.loop.online import OnlineTagger

    seen = []
    own = OnlineTagger.warm_start
    monkeypatch.setattr(OnlineTagger, "warm_start", lambda self, texts, steps=None: seen.append(list(texts)) or own(self, seen[-1], steps))
    cfg = sim.load_config(None, {**corpus, "strategies": ["random"], "manual": manual, "answers": 10, "online": {"steps": 1, "warm_steps": 3}})
    sim.simulate(cfg, log=None)
    if manual:  # the complete-texts workflow starts in sparse_ner.correct, which takes no patterns
        assert seen == []
    else:
        (texts,) = seen
        assert len(texts) == 24 and {t["meta"]["sentence"] for t in texts} == set(range(24))  # the shuffled stream
        assert [t["meta"]["sentence"] for t in texts] != list(range(24))
