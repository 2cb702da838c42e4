"""Chinese, character level: train on a few Resume NER sentences, predict db-out spans with exact offsets.

Every token is one character and the text has no spaces, so a span's character offsets must be its
token offsets, and ``text[start:end]`` must be the joined characters of its tokens.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from sparse_ner.data.columns import read_columns
from sparse_ner.data.prodigy import merge_records
from sparse_ner.core.encoders import build_encoder
from sparse_ner.core.metrics import EntityF1
from sparse_ner.core.tagger import Tagger, make_batch
from sparse_ner.core.predict import predict_tasks

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
RESUME = DATA / "resume_ner" / "dev.char.bmes"
TEACH = DATA / "teach" / "resume_ner_train_teach.jsonl"
LABELS = ["CONT", "EDU", "LOC", "NAME", "ORG", "PRO", "RACE", "TITLE"]
# a few sentences of the same shape as Resume NER, used when the corpus is not at ../shared
FALLBACK = [
    ("高勇：男，中国国籍，无境外居留权，", [(0, 2, "NAME"), (5, 9, "CONT")]),
    ("王建国先生，研究生学历，高级工程师。", [(0, 3, "NAME"), (6, 11, "EDU"), (12, 17, "TITLE")]),
    ("现任北京华夏科技有限公司董事长。", [(2, 12, "ORG"), (12, 15, "TITLE")]),
    ("李娜女士，汉族，2009年起任公司总经理。", [(0, 2, "NAME"), (5, 7, "RACE"), (17, 20, "TITLE")]),
]


def sentences(n: int = 8, max_chars: int = 30) -> list:
    """The first ``n`` dev sentences of Resume NER (BMES) with entities and at most ``max_chars``
    characters, or the fallback sentences."""
    if RESUME.exists():
        found = (ex for ex in read_columns(RESUME, encoding="bmes") if ex.accepted and len(ex) <= max_chars)
        return list(itertools.islice(found, n))
    from sparse_ner.data.columns import make_example
    from sparse_ner.tags import encode_spans

    out = []
    for text, spans in FALLBACK:
        tags = encode_spans(len(text), [(s, e - 1, lab) for s, e, lab in spans], "bioes")
        out.append(make_example(list(text), tags, "bioes"))
    return out


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    """A character-level tagger fitted to the sentences (memorized: the point is the plumbing)."""
    torch.manual_seed(0)
    examples = sentences()
    encoder = build_encoder("small", vocab_words=[ex.words for ex in examples], min_count=1, word_dim=32,
                            char_dim=4, char_out=4, shape_dim=4, hidden=64, dropout=0.0, word_dropout=0.0)  # fmt: skip
    model = Tagger(encoder, LABELS, "bioes", dropout=0.0)
    batch = make_batch(encoder, examples, model.tags, "bioes")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(40):
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()
    return model.eval()


def test_resume_columns_are_character_level_without_spaces() -> None:
    for ex in sentences():
        assert " " not in ex.text and all(len(t.text) == 1 for t in ex.tokens)
        assert [(t.start, t.end) for t in ex.tokens] == [(i, i + 1) for i in range(len(ex.text))]
        for span in ex.accepted:
            assert (span.start, span.end) == (span.token_start, span.token_end + 1)


def test_trains_and_predicts_chinese_characters(tagger: Tagger) -> None:
    examples = sentences()
    metric = EntityF1(LABELS)
    preds = tagger.tag(examples, batch_size=3)
    metric.update([[s[:3] for s in p] for p in preds], [[s.key for s in ex.accepted] for ex in examples])
    assert float(metric.compute()["f1"]) > 0.8  # it learned the sentences it was fitted on


@pytest.mark.parametrize("given_tokens", [True, False])
def test_db_out_offsets_are_exact(tagger: Tagger, given_tokens: bool) -> None:
    examples = sentences()
    tasks = []
    for ex in examples:
        task = {"text": ex.text}
        if given_tokens:  # db-out tokens, one per character
            task["tokens"] = [{"text": t.text, "start": t.start, "end": t.end, "id": i, "ws": False}
                              for i, t in enumerate(ex.tokens)]  # fmt: skip
        tasks.append(task)
    out = list(predict_tasks(tagger, tasks, batch_size=4))
    assert [o["text"] for o in out] == [ex.text for ex in examples]
    n_spans = 0
    for task in out:
        text, tokens = task["text"], task["tokens"]
        assert all(text[t["start"] : t["end"]] == t["text"] for t in tokens)
        for span in task["spans"]:
            n_spans += 1
            joined = "".join(t["text"] for t in tokens[span["token_start"] : span["token_end"] + 1])
            assert text[span["start"] : span["end"]] == joined
            assert span["start"] == tokens[span["token_start"]]["start"]
            assert span["end"] == tokens[span["token_end"]]["end"]
            if given_tokens:  # one character per token: character offsets are token offsets
                assert (span["start"], span["end"]) == (span["token_start"], span["token_end"] + 1)
    assert n_spans > 0
    # the predicted records read back as db-out: the same spans on the same characters
    records = [{**task, "answer": "accept", "_view_id": "ner_manual"} for task in out]
    back = merge_records(json.loads(json.dumps(records, ensure_ascii=False)), complete=True)
    assert [[(s.start, s.end, s.label) for s in ex.accepted] for ex in back] == [
        sorted((s["start"], s["end"], s["label"]) for s in task["spans"]) for task in out
    ]
    if given_tokens:  # on the corpus tokens, the predictions are those of the tagger itself
        expected = tagger.tag(examples)
        got = [[(s["token_start"], s["token_end"], s["label"]) for s in task["spans"]] for task in out]
        assert got == [[s[:3] for s in p] for p in expected]


@pytest.mark.skipif(not TEACH.exists(), reason="needs ../shared/data/teach")
def test_resume_teach_answers_read_at_character_level() -> None:
    from sparse_ner.data.read import read_any

    examples = read_any(TEACH, gold=False, max_records=200)
    assert examples and all(len(t.text) == 1 for ex in examples for t in ex.tokens)
    assert all(not ex.complete for ex in examples)
    for ex in examples:
        for span in (*ex.accepted, *ex.rejected):
            assert ex.text[span.start : span.end] == "".join(ex.words[span.token_start : span.token_end + 1])
            assert span.label in LABELS
