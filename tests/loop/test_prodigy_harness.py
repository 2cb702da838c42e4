"""The recipes run as Prodigy runs them (``tests/prodigy_harness.py``), end to end on WikiGold.

For both of Prodigy's command-line parsers (plac: 1.11; radicli: 1.12+), the README's command lines
start ``sparse_ner.teach`` (cold start from patterns) and ``sparse_ner.correct`` on a new model folder,
a gold annotator answers batch after batch while ``update`` runs in another thread, the recipe is
restarted on the saved folder and nothing answered is asked again; the datasets are written as
db-out JSONL and read back with ``read_examples``, trained on, reviewed (``sparse_ner.review`` in the
harness too) and merged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import prodigy_harness as ph
from sparse_ner.data.prodigy import read_examples

ROOT = Path(__file__).resolve().parents[2]
WIKIGOLD = ROOT / "examples" / "wikigold"
LABELS = "PER,ORG,LOC,MISC"


def _gold_records(name: str, n: int) -> list[dict]:
    out = []
    with open(WIKIGOLD / name, encoding="utf8") as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("spans") and len(rec["tokens"]) <= 40:
                out.append(rec)
            if len(out) == n:
                break
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A source of 600 WikiGold train texts (text + tokens, as a Prodigy source may have), the gold
    spans of each text, and patterns of the commonest entity strings of WikiGold train."""
    folder = tmp_path_factory.mktemp("corpus")
    gold_recs = _gold_records("train.jsonl", 600)
    source = folder / "news.jsonl"
    source.write_text("".join(json.dumps({"text": r["text"], "tokens": r["tokens"], "meta": {"i": i}}) + "\n"
                              for i, r in enumerate(gold_recs)), "utf8")  # fmt: skip
    gold = {r["text"]: {(s["start"], s["end"], s["label"]) for s in r["spans"]} for r in gold_recs}
    counts: Counter = Counter()
    for r in _gold_records("train.jsonl", 1332):
        for s in r["spans"]:
            counts[(r["text"][s["start"]:s["end"]], s["label"])] += 1
    patterns = folder / "patterns.jsonl"
    patterns.write_text("".join(json.dumps({"label": lab, "pattern": txt}) + "\n"
                                for (txt, lab), _ in counts.most_common(40)), "utf8")  # fmt: skip
    return {"source": source, "gold": gold, "patterns": patterns, "folder": folder}


def annotator(gold: dict[str, set]) -> callable:
    """Answers as a careful annotator would: binary questions by the gold spans, manual tasks with
    the gold spans, review tasks with the gold spans."""

    def answer(task: dict, view: str) -> dict:
        spans = gold[task["text"]]
        if view == "ner":
            (sp,) = task["spans"]
            return {**task, "answer": "accept" if (sp["start"], sp["end"], sp["label"]) in spans else "reject",
                    "_view_id": view}  # fmt: skip
        starts = {t["start"]: i for i, t in enumerate(task["tokens"])}
        ends = {t["end"]: i for i, t in enumerate(task["tokens"])}
        manual = [{"start": s, "end": e, "label": lab, "token_start": starts[s], "token_end": ends[e]}
                  for s, e, lab in sorted(spans) if s in starts and e in ends]  # fmt: skip
        return {**task, "spans": manual, "answer": "accept", "_view_id": view}

    return answer


def asked_spans(tasks: list[dict]) -> set:
    return {(t["_input_hash"], sp["token_start"], sp["token_end"], sp["label"]) for t in tasks for sp in t["spans"]}


@pytest.mark.parametrize("parser", ["plac", "radicli"])
def test_teach_and_correct_in_the_harness_with_restart_and_db_out(parser, corpus, tmp_path, monkeypatch, one_thread):
    ph.install(monkeypatch)
    answer = annotator(corpus["gold"])
    model = tmp_path / "model"
    src, pats = corpus["source"], corpus["patterns"]

    # teach: a new model from patterns; saved every 2 updates and on exit
    teach = ph.Controller(parser)
    cmd = f"prodigy sparse_ner.teach wg_teach {model} {src} --label {LABELS} --patterns {pats} --save-every 2"
    first = teach.run(cmd, answer, max_batches=6)
    assert len(first.served) == 60 and len(first.losses) == 6
    assert all(isinstance(x, float) for x in first.losses)
    assert any(a["answer"] == "accept" for a in teach.db) and any(a["answer"] == "reject" for a in teach.db)
    assert all(t["_task_hash"] == ph.set_hashes(dict(t), overwrite=True)["_task_hash"] for t in first.served)
    assert (model / "tagger.json").exists()

    # restart on the saved folder: nothing answered comes back, from the recipe itself
    again = teach.run(f"prodigy sparse_ner.teach wg_teach {model} {src} --label {LABELS} --device cpu", answer,
                      max_batches=2)  # fmt: skip
    assert again.served and not asked_spans(again.recipe_yielded) & asked_spans(first.served)

    # correct: whole texts, excluded by input; a restart asks none of the corrected texts again
    gold_db = ph.Controller(parser)
    corrected = gold_db.run(f"prodigy sparse_ner.correct wg_gold {model} {src} --label {LABELS}", answer,
                            max_batches=3)  # fmt: skip
    assert len(corrected.served) == 30 and all("score" not in s for t in corrected.served for s in t["spans"])
    texts = {t["_input_hash"] for t in corrected.served}
    assert all(t["_input_hash"] == ph.set_hashes({"text": t["text"]})["_input_hash"] for t in corrected.served)
    later = gold_db.run(f"prodigy sparse_ner.correct wg_gold {model} {src} -dv cpu", answer, max_batches=2)
    assert later.served and not {t["_input_hash"] for t in later.recipe_yielded} & texts

    # one text, one input hash: teach and correct agree on every text both showed
    by_text = {}
    for rec in teach.db + gold_db.db:
        by_text.setdefault(rec["text"], set()).add(rec["_input_hash"])
    assert all(len(h) == 1 for h in by_text.values())

    # db-out, read back: the model's answer memory holds the same texts under the same keys
    from sparse_ner.loop.online import OnlineTagger

    binary = teach.db_out(tmp_path / "teach.jsonl")
    manual = gold_db.db_out(tmp_path / "gold.jsonl")
    examples = read_examples(binary, labels=LABELS.split(",")) + read_examples(manual, labels=LABELS.split(","))
    saved = OnlineTagger.from_disk(model)
    assert {ex.input_hash for ex in examples} <= set(saved.memory)
    assert saved.n_answers == len(teach.db) + len(gold_db.db)
    assert sum(ex.complete for ex in examples) == len(texts) + len({t["_input_hash"] for t in later.served})


def test_db_out_trains_reviews_and_merges(corpus, tmp_path, monkeypatch, one_thread):
    """db-out of a harness session -> train -> review (recipe in the harness) -> merge: nothing lost."""
    ph.install(monkeypatch)
    answer = annotator(corpus["gold"])
    model = tmp_path / "model"
    ctl = ph.Controller("radicli")
    ctl.run(f"prodigy sparse_ner.teach wg {model} {corpus['source']} --label {LABELS} --patterns "
            f"{corpus['patterns']} --no-idle", answer, max_batches=8)  # fmt: skip
    dbout = ctl.db_out(tmp_path / "answers.jsonl")

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "sparse_ner.train", "--config", str(ROOT / "configs" /
                          "wikigold_quickstart.yaml"), "--data.train", str(dbout), "--trainer.max_epochs", "1",
                          "--trainer.default_root_dir", str(tmp_path / "runs"), "--export_dir",
                          str(tmp_path / "trained")], cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "trained" / "tagger.json").exists()

    review_file = tmp_path / "review.jsonl"
    run = subprocess.run([sys.executable, "-m", "sparse_ner.review", str(dbout), "-o", str(review_file), "--model",
                          str(tmp_path / "trained")], cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    n_review = sum(1 for line in review_file.read_text("utf8").splitlines() if line.strip())

    # the review recipe into the ORIGINAL dataset: one batch through -F (plac), then a restart
    # through the entry point (radicli) serves the rest, none twice, none dropped as a duplicate
    fresh = ph.Controller("plac")
    fresh.db = list(ctl.db)
    first = fresh.run(f"prodigy sparse_ner.review wg {review_file} -F {ROOT / 'sparse_ner' / 'review' / 'recipe.py'}",
                      answer, max_batches=1)  # fmt: skip
    fresh.parser = "radicli"
    rest = fresh.run(f"prodigy sparse_ner.review wg {review_file}", answer)
    served = first.served + rest.served
    assert len(first.served) == 10 and len(served) == n_review
    assert len({t["_task_hash"] for t in served}) == n_review
    assert not {t["_task_hash"] for t in served} & {a["_task_hash"] for a in ctl.db}
    corrections = fresh.db[len(ctl.db):]
    assert all(not s["label"].endswith(":PREDICTED") for c in corrections for s in c["spans"])  # before_db ran

    from sparse_ner.review.merge import merge_corrections

    merged, replaced, counts = merge_corrections(ctl.db, corrections)
    reviewed = {c["_input_hash"] for c in corrections}
    assert counts["unmatched"] == 0 and replaced == [r for r in ctl.db if r["_input_hash"] in reviewed]
    assert [r for r in merged if r["_input_hash"] not in reviewed] == [r for r in ctl.db if r not in replaced]
    assert {r["_input_hash"] for r in merged} == {r["_input_hash"] for r in ctl.db}  # no text lost


def test_new_model_without_patterns_stops_with_one_line(corpus, tmp_path, monkeypatch):
    ph.install(monkeypatch)
    with pytest.raises(SystemExit) as err:
        ph.Controller("radicli").components(
            f"prodigy sparse_ner.teach ds {tmp_path / 'new'} {corpus['source']} --label {LABELS}")
    message = str(err.value)
    assert "\n" not in message and "--patterns" in message and "sparse_ner.correct" in message
    assert not (tmp_path / "new").exists()


def test_radicli_and_plac_parse_every_recipe_signature(monkeypatch):
    """The exact option spellings of the README, with both parsers (Prodigy 1.11 and 1.12+)."""
    ph.install(monkeypatch)
    ph.load_entry_points()
    assert {"sparse_ner.teach", "sparse_ner.correct", "sparse_ner.review"} <= set(ph.REGISTRY)
    argv = {"sparse_ner.teach": "ds ./m src.jsonl --label ORG,PER --patterns p.jsonl --encoder minilm --save-every 5 "
                                "--bias 0.5 --no-idle",
            "sparse_ner.correct": "ds ./m src.jsonl --label ORG,PER --save-every 3",
            "sparse_ner.review": "ds review.jsonl"}  # fmt: skip
    for name, line in argv.items():
        fn, annotations = ph.REGISTRY[name]
        a = ph.parse_plac(fn, annotations, line.split())
        b = ph.parse_radicli(name, fn, annotations, line.split())
        assert a == b, (name, a, b)
    assert b["dataset"] == "ds"
    teach = ph.parse_radicli("sparse_ner.teach", *ph.REGISTRY["sparse_ner.teach"], argv["sparse_ner.teach"].split())
    assert teach["save_every"] == 5 and teach["bias"] == 0.5 and teach["no_idle"] is True and teach["label"] == "ORG,PER"


def test_recipe_module_import_is_cheap_and_a_broken_prodigy_is_visible(tmp_path):
    code = "import sys, sparse_ner.loop.recipes as r; assert 'torch' not in sys.modules; print(r.teach.recipe_name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "sparse_ner.teach", out.stderr
    broken = tmp_path / "prodigy"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('prodigy is broken: missing licence')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", "import sparse_ner.loop.recipes"], capture_output=True, text=True,
                         cwd=ROOT, env=env)  # fmt: skip
    assert out.returncode != 0 and "prodigy is broken" in out.stderr


def test_hashes_are_prodigys_and_old_md5_keys_migrate(tmp_path, monkeypatch, one_thread):
    """Without Prodigy the fallback hash keys the memory; saved, then loaded where Prodigy is
    importable, every answer moves to Prodigy's input hash (so no text is asked again)."""
    from sparse_ner.data import hashes
    from sparse_ner.data.hashes import input_hash
    from sparse_ner.loop.online import OnlineTagger

    text = "Alice flew to Paris today ."
    task = hashes.set_hashes({"text": text, "spans": [{"start": 14, "end": 19, "label": "LOC"}]})
    assert task["_input_hash"] == input_hash(text)  # the documented fallback
    assert hashes.set_hashes(dict(task, spans=[]), overwrite=True)["_task_hash"] != task["_task_hash"]
    assert hashes.fallback_hashes({**task, "spans": [{**task["spans"][0], "score": 0.3}]}) == \
        (task["_input_hash"], task["_task_hash"])  # a score does not change the question  # fmt: skip

    online = OnlineTagger.from_config(["LOC", "PER"], "small", texts=[text])
    tok = {"text": "Paris", "start": 14, "end": 19, "id": 3, "ws": True}
    online.update([{"text": text, "spans": [{"start": 14, "end": 19, "token_start": 3, "token_end": 3,
                                            "label": "LOC"}], "answer": "accept", "_view_id": "ner"}])  # fmt: skip
    assert set(online.memory) == {input_hash(text)} and tok
    online.to_disk(tmp_path / "m")

    ph.install(monkeypatch)
    prodigy_key = ph.set_hashes({"text": text})["_input_hash"]
    assert prodigy_key != input_hash(text)
    assert hashes.set_hashes({"text": text})["_input_hash"] == prodigy_key  # Prodigy's own set_hashes
    loaded = OnlineTagger.from_disk(tmp_path / "m")
    assert set(loaded.memory) == {prodigy_key} and (prodigy_key, 3, 3, "LOC") in loaded.asked
    assert all(r["_input_hash"] == prodigy_key for r in loaded.memory[prodigy_key])


def test_readme_command_lines_parse_with_plac_and_radicli(monkeypatch):
    """Every `prodigy sparse_ner.*` line of the README parses the same with both parsers."""
    ph.install(monkeypatch)
    ph.load_entry_points()
    readme = (ROOT / "README.md").read_text("utf8")
    lines = [line.strip() for line in readme.splitlines() if line.strip().startswith("prodigy sparse_ner.")]
    block = readme.split("<!-- prodigy-commands -->", 1)[1].split("```", 2)[1]
    assert sum(line.startswith("prodigy sparse_ner.") for line in block.splitlines()) == 3
    assert {line.split()[1] for line in lines} == {"sparse_ner.teach", "sparse_ner.correct", "sparse_ner.review"}
    for line in lines:
        argv = line.split("#")[0].split()
        name, rest = argv[1], argv[2:]
        fn, annotations = ph.REGISTRY[name]
        assert ph.parse_plac(fn, annotations, rest) == ph.parse_radicli(name, fn, annotations, rest), line
