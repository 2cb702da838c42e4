"""A 5,000-token text through a transformer tagger whose encoder takes 64 positions at most.

The text is cut into overlapping windows; every word takes its vector from one window, and the CRF
decodes over the stitched sequence, so spans may cross window boundaries but always agree with the
tags decoded from the stitched emissions.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from sparse_ner.data.example import Example, Token
from sparse_ner.tags import allowed_transitions, decode_tags

N_WORDS = 5000
MAX_POSITIONS = 64
STRIDE = 16


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def tagger(bert_folder: Path):
    from sparse_ner.core.encoders import TransformerEncoder
    from sparse_ner.core.tagger import Tagger

    torch.manual_seed(1)
    encoder = TransformerEncoder(bert_folder, stride=STRIDE, window_batch_size=32)
    model = Tagger(encoder, ["LOC", "PER"], "bio", dropout=0.0).eval()
    with torch.no_grad():  # large random emissions and a bias to continue entities: many long spans
        model.emit.weight.mul_(3.0)
        for tag in ("I-LOC", "I-PER"):
            model.emit.bias[model.tags.index(tag)] += 3.0
    return model


@pytest.fixture(scope="module")
def predicted(tagger) -> tuple[Example, list]:
    example = long_example()
    (spans,) = tagger.tag([example], batch_size=1)
    return example, spans


def long_example(seed: int = 0) -> Example:
    """5,000 space-separated words; some split into two subwords (``w7x`` -> ``w7 ##x``)."""
    rng = random.Random(seed)
    words = [rng.choice([f"w{rng.randrange(60)}", f"w{rng.randrange(60)}x", "paris", "anna", "."])
             for _ in range(N_WORDS)]  # fmt: skip
    tokens, pos = [], 0
    for w in words:
        tokens.append(Token(w, pos, pos + len(w)))
        pos += len(w) + 1
    return Example(" ".join(words), tokens)


def test_every_token_of_a_5000_token_text_is_tagged_consistently(tagger, predicted) -> None:
    from sparse_ner.core.tagger import make_batch

    example, spans = predicted
    encoder = tagger.encoder
    batch = make_batch(encoder, [example])
    inputs = batch["inputs"]
    W, L = inputs["input_ids"].shape
    assert L <= MAX_POSITIONS and W > N_WORDS // MAX_POSITIONS  # many windows, none over the limit
    assert int(inputs["word_mask"].sum()) == N_WORDS  # every token has a vector: none truncated

    with torch.no_grad():
        hidden = encoder(inputs)  # (1, T, H), stitched over the windows
        emissions = tagger.emit(hidden)  # (1, T, K)
    assert emissions.shape[:2] == (1, N_WORDS) and torch.isfinite(emissions).all()

    # each word's vector is the one its chosen window gives when run on its own
    features = encoder.featurize(example.words)
    index = inputs["subword_index"][0, :, 0]  # (T,) flat positions into W * L
    rows, cols = index // L, index % L
    hidden = hidden[0]  # (T, H)
    with torch.no_grad():
        for row in sorted(set(rows.tolist()))[:: max(1, W // 12)]:  # a sample of the windows
            alone = encoder.model(input_ids=inputs["input_ids"][row : row + 1],
                                  attention_mask=inputs["attention_mask"][row : row + 1]).last_hidden_state[0]  # fmt: skip
            at = (rows == row).nonzero().flatten()
            torch.testing.assert_close(hidden[at], alone[cols[at]], atol=1e-5, rtol=1e-5)
    # a word away from the text's ends sits at least stride/2 subwords inside its window's edges
    P = len(encoder.prefix)
    window_len = inputs["attention_mask"].sum(1)[rows] - P - len(encoder.suffix)  # (T,)
    offset = cols - P  # position of the word's first subword inside its window
    starts, ends = zip(*features["word_spans"])
    n_sub = ends[-1]
    inner = torch.tensor([STRIDE <= a and b <= n_sub - STRIDE for a, b in features["word_spans"]])
    margin = torch.minimum(offset, window_len - 1 - offset)
    assert bool((margin[inner] >= STRIDE // 2 - 1).all())

    # the prediction is the Viterbi path over the stitched emissions, a valid tag sequence across
    # every window seam, and its spans are exactly the spans of that path
    (path,), _ = tagger.crf.decode(emissions, inputs["word_mask"])
    tags = [tagger.tags[k] for k in path]
    assert len(tags) == N_WORDS
    start_ok, trans_ok, end_ok = allowed_transitions(tagger.tags, "bio")
    assert bool(start_ok[path[0]]) and bool(end_ok[path[-1]])
    assert all(bool(trans_ok[a, b]) for a, b in zip(path, path[1:]))
    assert [s[:3] for s in spans] == decode_tags(tags, "bio")
    assert len(spans) > 50 and all(0.0 <= s.score <= 1.0 for s in spans)
    seams = {int(i) for i in range(1, N_WORDS) if rows[i] != rows[i - 1]}
    assert any(s.start < i <= s.end for s in spans for i in seams), "no span crosses a window seam"


def test_long_text_db_out_round_trip(tagger, predicted, tmp_path: Path) -> None:
    """Export, reload and predict the raw text next to short ones: the same spans, exact offsets."""
    from sparse_ner.core.export import export, load
    from sparse_ner.core.predict import predict_tasks

    example, spans = predicted
    export(tagger, tmp_path / "model")
    reloaded = load(tmp_path / "model")
    tasks = [{"text": "anna w1 paris"}, {"text": example.text}, {"text": "anna w1 paris"}]
    short, task, again = predict_tasks(reloaded, tasks, batch_size=3)
    assert len(task["tokens"]) == N_WORDS
    assert [(s["token_start"], s["token_end"], s["label"]) for s in task["spans"]] == [s[:3] for s in spans]
    assert [s["score"] for s in task["spans"]] == pytest.approx([s.score for s in spans], abs=1e-4)
    assert short["spans"] == again["spans"]
    text, tokens = example.text, task["tokens"]
    for s in task["spans"]:
        words = " ".join(t["text"] for t in tokens[s["token_start"] : s["token_end"] + 1])
        assert text[s["start"] : s["end"]] == words
