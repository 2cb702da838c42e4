"""The exported tagger as a spaCy pipeline (issue 15): ``spacy.load`` in a fresh process, ``nlp.pipe``,
``spacy evaluate``, a Prodigy review-hardest recipe, character-level Chinese, ``sparse-ner to-spacy``.

Models are fitted in a few seconds on the synthetic corpus (and on WikiGold when ``../shared/data`` has
it); nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import torch
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example as SpacyExample

from sparse_ner.core.encoders import build_encoder
from sparse_ner.core.evaluate import evaluate
from sparse_ner.core.export import export, load
from sparse_ner.core.predict import predict_tasks
from sparse_ner.core.tagger import Tagger
from sparse_ner.data.example import Example, Token
from sparse_ner.data.prodigy import read_examples
from sparse_ner.data.tokenize import tokenize
from sparse_ner.integrations.spacy import FACTORY, SPANS_KEY, to_spacy, write_pipeline
from synthetic import make_corpus

WIKIGOLD = Path(__file__).resolve().parents[3] / "shared" / "data" / "wikigold" / "wikigold.conll.txt"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def fit_tiny(examples: list[Example], labels: list[str], scheme: str = "bio", steps: int = 60) -> Tagger:
    """A small tagger fitted to complete ``examples`` with plain Adam steps (seconds on one thread)."""
    torch.manual_seed(0)
    encoder = build_encoder("small", vocab_words=[ex.words for ex in examples], min_count=1, word_dim=16, char_dim=8,
                            char_out=8, shape_dim=4, hidden=32, dropout=0.0, word_dropout=0.0)  # fmt: skip
    tagger = Tagger(encoder, labels, scheme, dropout=0.0)
    batches = [tagger.make_batch(examples[i : i + 32]) for i in range(0, len(examples), 32)]
    optimizer = torch.optim.Adam(tagger.parameters(), lr=0.03)
    for step in range(steps):
        optimizer.zero_grad()
        tagger.loss(batches[step % len(batches)]).backward()
        optimizer.step()
    return tagger.eval()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The synthetic corpus, a model fitted on its gold dev file, and a noisy copy of its test file
    (every third record with its labels swapped) so that the model disagrees with part of the gold."""
    folder = tmp_path_factory.mktemp("corpus")
    paths = make_corpus(folder, n_gold=60)
    tagger = fit_tiny(read_examples(paths["dev"], complete=True), ["LOC", "PER"])
    paths["model"] = folder / "model"
    export(tagger, paths["model"])
    records = list({r["text"]: r for r in map(json.loads, paths["test"].read_text().splitlines())}.values())
    swap = {"PER": "LOC", "LOC": "PER"}
    for i, record in enumerate(records):  # one record per text: the answers never conflict
        if i % 3 == 0 and record["spans"]:
            record["spans"] = [{**s, "label": swap[s["label"]]} for s in record["spans"]]
            record["meta"] = {"swapped": True}
    paths["noisy"] = folder / "noisy.jsonl"
    paths["noisy"].write_text("".join(json.dumps(r) + "\n" for r in records))
    paths["pipeline"] = write_pipeline(paths["model"], folder / "pipeline")
    return paths


# a fresh process: only spacy is imported; the component's factory comes from the entry point
LOAD_AND_PIPE = r"""
import json, sys
import spacy
from spacy.tokens import Doc
nlp = spacy.load(sys.argv[1])
payload = json.load(sys.stdin)
if payload["words"] is None:
    docs = nlp.pipe(payload["texts"])
else:
    docs = nlp.pipe(Doc(nlp.vocab, words=w, spaces=s) for w, s in payload["words"])
key = nlp.get_pipe("ner").spans_key
out = [{"tokens": [t.text for t in doc],
        "ents": [[e.start_char, e.end_char, e.label_] for e in doc.ents],
        "spans": [[s.start_char, s.end_char, s.label_] for s in doc.spans[key]],
        "scores": [float(x) for x in doc.spans[key].attrs["scores"]]} for doc in docs]
print(json.dumps({"docs": out, "labels": nlp.pipe_labels, "factory": nlp.get_pipe_meta("ner").factory,
                  "names": nlp.pipe_names}))
"""


def load_and_pipe(pipeline: Path, texts: list[str] | None = None, words: list | None = None) -> dict:
    payload = json.dumps({"texts": texts, "words": words})
    done = subprocess.run([sys.executable, "-c", LOAD_AND_PIPE, str(pipeline)], input=payload, capture_output=True,
                          text=True, env=ENV, cwd=pipeline.parent, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def expected_spans(tagger: Tagger, tasks: list[dict]) -> list[list[tuple]]:
    """``sparse_ner.predict`` on the same tasks: ``(start, end, label, score)`` per span (scores to 6 places)."""
    return [[(s["start"], s["end"], s["label"], s["score"]) for s in t["spans"]] for t in predict_tasks(tagger, tasks)]


def check_same(docs: list[dict], expected: list[list[tuple]], exact: list[list[float]] | None = None) -> int:
    assert len(docs) == len(expected)
    n = 0
    for doc, spans in zip(docs, expected):
        assert doc["ents"] == [list(s[:3]) for s in spans]
        assert doc["spans"] == doc["ents"]
        assert doc["scores"] == pytest.approx([s[3] for s in spans], abs=5e-7)
        n += len(spans)
    if exact is not None:  # the probabilities themselves, not only to 6 places
        assert [d["scores"] for d in docs] == exact
    return n


def test_spacy_load_in_a_fresh_process_gives_predicts_spans(corpus: dict[str, Path]) -> None:
    tagger = load(corpus["model"])
    texts = [r["text"] for r in map(json.loads, corpus["test"].read_text().splitlines())]
    texts += ["John  Smith lives in\nParis .", "Anna flew to Rome .\n\n", " ", ""]  # whitespace tokens, empty texts
    out = load_and_pipe(corpus["pipeline"], texts=texts)
    assert out["factory"] == FACTORY and out["names"] == ["ner"]
    assert out["labels"] == {"ner": ["LOC", "PER"]}
    # spaCy's tokens are the words the tagger saw (whitespace tokens left out): our tokenizer's here
    assert [[t for t in d["tokens"] if t.strip()] for d in out["docs"]] == [[t.text for t in tokenize(x)] for x in texts]
    examples = [Example(x, tokenize(x)) for x in texts]
    exact = [[s.score for s in spans] if ex.tokens else [] for ex, spans in
             zip(examples, [*tagger.tag([e for e in examples if e.tokens]), [], []])]  # fmt: skip
    n = check_same(out["docs"], expected_spans(tagger, [{"text": x} for x in texts]), exact)
    assert n >= len(texts) // 2  # the model finds entities: the comparison is not between empty lists
    assert out["docs"][-4]["ents"][:2] == [[0, 11, "PER"], [21, 26, "LOC"]]  # across the double space and newline


@pytest.mark.skipif(not WIKIGOLD.exists(), reason="needs ../shared/data/wikigold (not in this checkout)")
def test_wikigold_model_round_trip_on_the_corpus_tokens(tmp_path: Path) -> None:
    from sparse_ner.data.columns import read_columns

    sentences = [ex for ex in read_columns(WIKIGOLD, encoding="iob1") if ex.tokens]
    train, test = sentences[:400], sentences[-120:]
    tagger = fit_tiny(train, ["LOC", "MISC", "ORG", "PER"], steps=80)
    export(tagger, tmp_path / "model")
    pipeline = write_pipeline(tmp_path / "model", tmp_path / "pipeline")
    words = [[ex.words, [t.ws for t in ex.tokens]] for ex in test]  # a Doc made from our own tokens
    out = load_and_pipe(pipeline, words=words)
    assert [d["tokens"] for d in out["docs"]] == [ex.words for ex in test]
    tasks = [{"text": ex.text, "tokens": [{"text": t.text, "start": t.start, "end": t.end, "id": i, "ws": t.ws}
                                          for i, t in enumerate(ex.tokens)]} for ex in test]  # fmt: skip
    exact = [[s.score for s in spans] for spans in load(tmp_path / "model").tag(test)]
    assert check_same(out["docs"], expected_spans(tagger, tasks), exact) > 0


def test_spacy_evaluate_equals_sparse_ner_evaluate(corpus: dict[str, Path], tmp_path: Path) -> None:
    gold = read_examples(corpus["noisy"], complete=True)
    vocab = spacy.blank("en").vocab
    docbin = DocBin()
    for ex in gold:
        doc = Doc(vocab, words=ex.words, spaces=[t.ws for t in ex.tokens])
        doc.ents = [Span(doc, s.token_start, s.token_end + 1, label=s.label) for s in ex.accepted]
        docbin.add(doc)
    docbin.to_disk(tmp_path / "test.spacy")
    done = subprocess.run([sys.executable, "-m", "spacy", "evaluate", str(corpus["pipeline"]), str(tmp_path / "test.spacy"),
                           "--output", str(tmp_path / "metrics.json")], capture_output=True, text=True, env=ENV,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    spacy_scores = json.loads((tmp_path / "metrics.json").read_text())
    ours = evaluate(corpus["model"], corpus["noisy"])
    assert 0.2 < ours["f1"] < 0.95  # the noisy gold disagrees with the model in part
    assert spacy_scores["ents_f"] == pytest.approx(ours["f1"], abs=1e-6)
    assert spacy_scores["ents_p"] == pytest.approx(ours["precision"], abs=1e-6)
    assert spacy_scores["ents_r"] == pytest.approx(ours["recall"], abs=1e-6)
    for label in ("LOC", "PER"):
        assert spacy_scores["ents_per_type"][label]["f"] == pytest.approx(ours[f"{label}_f1"], abs=1e-6)


def review_hardest(nlp: spacy.Language, tasks: list[dict], component: str = "ner") -> list[tuple[float, dict]]:
    """What a Prodigy "review hardest" recipe does with a pipeline (written for spaCy's own ``ner``):
    per task, the entity F1 of the prediction against the task's spans, hardest first. Tasks where
    neither side has an entity (``ents_f`` is ``None``) are left out, as prodigy-evaluate does."""
    scored = []
    for pred, eg in nlp.pipe(((eg["text"], eg) for eg in tasks), as_tuples=True):
        reference = Doc(nlp.vocab, words=[t["text"] for t in eg["tokens"]], spaces=[t["ws"] for t in eg["tokens"]])
        reference.ents = [reference.char_span(s["start"], s["end"], label=s["label"]) for s in eg["spans"]]
        example = SpacyExample(pred, reference)
        f = nlp.get_pipe(component).score([example])["ents_f"]
        if f is not None:
            scored.append((f, eg))
    return sorted(scored, key=lambda x: x[0])


def test_review_hardest_recipe_runs_unchanged(corpus: dict[str, Path]) -> None:
    tasks = [json.loads(line) for line in corpus["noisy"].read_text().splitlines()]
    # the recipe as it runs on spaCy's own (untrained) entity recognizer ...
    spacy_ner = spacy.blank("en")
    ner = spacy_ner.add_pipe("ner")
    for label in ("LOC", "PER"):
        ner.add_label(label)
    spacy_ner.initialize()
    assert len(review_hardest(spacy_ner, tasks)) > 0
    # ... and, unchanged, on ours
    nlp = spacy.load(corpus["pipeline"])
    ranked = review_hardest(nlp, tasks)
    assert [f for f, _ in ranked] == sorted(f for f, _ in ranked)
    tagger = load(corpus["model"])
    for f, eg in ranked:  # each score is the example's entity F1 from the tagger's own spans
        gold = {(s["token_start"], s["token_end"], s["label"]) for s in eg["spans"]}
        (pred,) = tagger.tag([Example(eg["text"], tokenize(eg["text"]))])
        found = {tuple(s[:3]) for s in pred}
        assert f == pytest.approx(2 * len(gold & found) / (len(gold) + len(found)))
    swapped = [f for f, eg in ranked if eg.get("meta", {}).get("swapped")]
    untouched = [f for f, eg in ranked if not eg.get("meta", {}).get("swapped")]
    assert len(swapped) >= 5 and len(untouched) >= 5
    assert sum(f == 1.0 for f in untouched) >= 0.8 * len(untouched)  # the model agrees with the untouched tasks ...
    assert sum(f < 1.0 for f in swapped) >= 0.8 * len(swapped)  # ... the swapped ones come first
    assert sum(f < 1.0 for f, _ in ranked[: len(swapped)]) >= 0.8 * len(swapped)


CHINESE = [  # (text, spans with exclusive character ends), the shape of Resume NER
    ("高勇：男，中国国籍，无境外居留权，", [(0, 2, "NAME"), (5, 9, "CONT")]),
    ("王建国先生，研究生学历，高级工程师。", [(0, 3, "NAME"), (6, 11, "EDU"), (12, 17, "TITLE")]),
    ("现任北京华夏科技有限公司董事长。", [(2, 12, "ORG"), (12, 15, "TITLE")]),
    ("李娜女士，汉族，2009年起任公司总经理。", [(0, 2, "NAME"), (5, 7, "RACE"), (17, 20, "TITLE")]),
]


def test_chinese_characters_from_spacy_blank_zh() -> None:
    from sparse_ner.data.columns import make_example
    from sparse_ner.tags import encode_spans

    examples = [make_example(list(text), encode_spans(len(text), [(s, e - 1, lab) for s, e, lab in spans], "bioes"), "bioes")
                for text, spans in CHINESE]  # fmt: skip
    labels = sorted({lab for _, spans in CHINESE for _, _, lab in spans})
    tagger = fit_tiny(examples, labels, "bioes", steps=60)
    nlp = to_spacy(tagger, spacy.blank("zh"))
    assert nlp.tokenizer.segmenter == "char"
    docs = list(nlp.pipe([text for text, _ in CHINESE]))
    assert all(len(t) == 1 for doc in docs for t in doc)
    expected = tagger.tag(examples)
    for doc, (text, gold), spans in zip(docs, CHINESE, expected):
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [(s.start, s.end + 1, s.label) for s in spans]
        assert all(text[e.start_char : e.end_char] == e.text for e in doc.ents)
        assert list(doc.spans[SPANS_KEY].attrs["scores"]) == [s.score for s in spans]
    found = sum(len(doc.ents) for doc in docs)
    correct = sum(len({(e.start_char, e.end_char, e.label_) for e in doc.ents} & set(gold)) for doc, (_, gold) in zip(docs, CHINESE))
    assert found > 0 and correct >= 0.8 * sum(len(g) for _, g in CHINESE)  # it learned the sentences
    # the pipeline as bytes: the same spans and probabilities after from_bytes
    again = spacy.blank("zh")
    again.add_pipe(FACTORY, name="ner")
    again.from_bytes(nlp.to_bytes())
    assert again.pipe_labels["ner"] == labels
    for doc, redo in zip(docs, again.pipe([text for text, _ in CHINESE])):
        assert [(e.start, e.end, e.label_) for e in redo.ents] == [(e.start, e.end, e.label_) for e in doc.ents]
        assert list(redo.spans[SPANS_KEY].attrs["scores"]) == list(doc.spans[SPANS_KEY].attrs["scores"])


def test_to_spacy_adds_to_a_given_pipeline_and_refuses_a_taken_name(corpus: dict[str, Path]) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    to_spacy(corpus["model"], nlp, name="people", spans_key="ppl")
    assert nlp.pipe_names == ["sentencizer", "people"] and nlp.pipe_labels["people"] == ["LOC", "PER"]
    doc = nlp("John Smith lives in Paris .")
    assert [(e.text, e.label_) for e in doc.ents] == [("John Smith", "PER"), ("Paris", "LOC")]
    assert len(doc.spans["ppl"].attrs["scores"]) == 2 and all(0.5 < p <= 1 for p in doc.spans["ppl"].attrs["scores"])
    with pytest.raises(ValueError, match="people"):
        to_spacy(corpus["model"], nlp, name="people")
    empty = spacy.blank("en").add_pipe(FACTORY)
    assert empty.labels == ()
    with pytest.raises(ValueError, match="no model"):
        empty(spacy.blank("en")("John"))


def test_cli_refuses_a_full_folder_and_never_writes_over_the_model(corpus: dict[str, Path], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    from sparse_ner.cli import main

    model = corpus["model"]
    before = {p: p.read_bytes() for p in model.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["to-spacy", str(model), str(out)]) == 2
    assert "--force" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    assert main(["to-spacy", str(model), str(model), "--force"]) == 2
    assert main(["to-spacy", str(model), str(model.parent), "--force"]) == 2
    assert main(["to-spacy", str(model), str(out), "--force", "--name", "ents"]) == 0
    assert not (out / "keep.txt").exists() and (out / "ents" / "tagger.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    assert spacy.load(out).pipe_names == ["ents"]
    assert {p: p.read_bytes() for p in model.rglob("*") if p.is_file()} == before
    assert main(["to-spacy", str(tmp_path / "nothing"), str(tmp_path / "x")]) == 2
    assert main(["to-spacy", str(model), str(tmp_path / "x"), "--lang", "xx-no-such"]) == 2
    assert "xx-no-such" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_spacy_package_carries_the_model_and_requires_sparse_ner(corpus: dict[str, Path], tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "spacy", "package", str(corpus["pipeline"]), str(tmp_path), "--name",
                           "tiny", "--version", "0.1.0", "--build", "none"], capture_output=True, text=True, env=ENV,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    package = tmp_path / "en_tiny-0.1.0"
    meta = json.loads((package / "meta.json").read_text())
    assert any(r.startswith("sparse-ner") for r in meta["requirements"])
    assert (package / "en_tiny" / "en_tiny-0.1.0" / "ner" / "tagger.json").is_file()


def test_transformer_tagger_on_spacy_tokens() -> None:
    """MiniLM's subwords are aligned to spaCy's tokens; the pipeline, also after to_bytes/from_bytes,
    gives the tagger's own spans and probabilities on them."""
    from sparse_ner.core.tagger import TaggerConfig

    torch.manual_seed(0)
    tagger = TaggerConfig(encoder="minilm", dropout=0.0).build(["LOC", "PER"]).eval()
    with torch.no_grad():  # an untrained model that predicts some entities
        tagger.emit.bias.copy_(torch.tensor([0.0, 2.0, 0.5, 1.0, 0.5]))
    texts = ["Zürich's 3.5-million-franc deal (with Nestlé) fell through.", "O'Neil met Ms. Dürr in São Paulo!"]
    nlp = to_spacy(tagger, spacy.blank("en"))
    docs = list(nlp.pipe(texts))
    words = [[t.text for t in doc] for doc in docs]
    assert words[0][:2] == ["Zürich", "'s"]  # spaCy's tokens, not ours
    examples = [Example(doc.text, [Token(t.text, t.idx, t.idx + len(t), bool(t.whitespace_)) for t in doc]) for doc in docs]
    expected = tagger.tag(examples)
    assert sum(map(len, expected)) > 0
    again = spacy.blank("en")
    again.add_pipe(FACTORY, name="ner")
    again.from_bytes(nlp.to_bytes())
    for pipeline in (nlp, again):
        for doc, spans in zip(pipeline.pipe(texts), expected):
            assert [(e.start, e.end - 1, e.label_) for e in doc.ents] == [s[:3] for s in spans]
            assert list(doc.spans[SPANS_KEY].attrs["scores"]) == pytest.approx([s.score for s in spans], abs=1e-6)
