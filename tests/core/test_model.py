"""The Tagger network, batching, the bucketed sampler and export round trips (no Lightning)."""

from __future__ import annotations

import random

import pytest
import torch

from sparse_ner.data.example import Example, Span, Token
from sparse_ner.training.datamodule import BucketBatchSampler
from sparse_ner.core.encoders import build_encoder
from sparse_ner.core.export import export, load
from sparse_ner.core.tagger import ScoredSpan, Tagger, make_batch

LABELS = ["LOC", "PER"]


def example(words: list[str], accepted=(), rejected=(), complete: bool = False) -> Example:
    tokens, pos = [], 0
    for w in words:
        tokens.append(Token(w, pos, pos + len(w)))
        pos += len(w) + 1

    def span(s: int, e: int, label: str) -> Span:
        return Span(tokens[s].start, tokens[e].end, s, e, label)

    return Example(" ".join(words), tokens, [span(*a) for a in accepted], [span(*r) for r in rejected], complete)


EXAMPLES = [  # ragged, with accepts, rejects, a complete one and an unannotated one
    example("John Smith lives in Paris .".split(), accepted=[(0, 1, "PER")], rejected=[(4, 4, "PER")]),
    example("Paris is nice".split(), accepted=[(0, 0, "LOC")], complete=True),
    example("Nobody knows".split(), rejected=[(0, 0, "PER")]),
    example("Go".split()),
]


def tagger(scheme: str = "bio", transitions: bool = True, **options) -> Tagger:
    torch.manual_seed(0)
    encoder = build_encoder("small", vocab_words=[ex.words for ex in EXAMPLES], min_count=1, hidden=16,
                            word_dim=8, char_dim=4, char_out=4, shape_dim=4)  # fmt: skip
    return Tagger(encoder, LABELS, scheme, dropout=0.0, transitions=transitions, **options)


@pytest.mark.parametrize("scheme", ["bio", "bioes"])
@pytest.mark.parametrize("transitions", [True, False])
def test_loss_is_finite_and_trains(scheme: str, transitions: bool) -> None:
    model = tagger(scheme, transitions)
    batch = make_batch(model.encoder, EXAMPLES, model.tags, scheme)
    assert batch["inputs"]["word_mask"].shape == (4, 6)
    assert batch["lattice"].mask.shape == (4, 6)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        loss = model.loss(batch)
        assert loss.dim() == 0 and torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()
    preds = model.predict(batch)
    assert (0, 1, "PER") in [p[:3] for p in preds[0]]  # learnt the accepted span
    assert (0, 0, "LOC") in [p[:3] for p in preds[1]]


def test_unannotated_example_has_zero_loss() -> None:
    model = tagger()
    batch = make_batch(model.encoder, EXAMPLES[3:], model.tags, model.scheme)
    assert model.loss(batch).item() == pytest.approx(0.0, abs=1e-5)


def test_entity_ratio_option_adds_a_penalty() -> None:
    plain, ratio = tagger(), tagger(entity_ratio=0.9, ratio_margin=0.0, ratio_weight=10.0)
    ratio.load_state_dict(plain.state_dict())
    batch = make_batch(plain.encoder, EXAMPLES, plain.tags)
    assert ratio.loss(batch).item() > plain.loss(batch).item()


def test_predict_spans_are_valid_and_scored() -> None:
    model = tagger().eval()
    batch = make_batch(model.encoder, EXAMPLES, model.tags)
    preds = model.predict(batch)
    assert len(preds) == len(EXAMPLES)
    for ex, spans in zip(EXAMPLES, preds):
        for s in spans:
            assert isinstance(s, ScoredSpan)
            assert 0 <= s.start <= s.end < len(ex) and s.label in LABELS and 0.0 <= s.score <= 1.0
    assert model.tag(EXAMPLES, batch_size=3) == model.tag(EXAMPLES, batch_size=3)


def test_span_probs_of_given_spans_in_batches() -> None:
    model = tagger()  # in training mode: span_probs runs in eval mode and restores it
    spans = [[(s, e, lab) for s in range(len(ex)) for e in range(s, min(len(ex), s + 2)) for lab in LABELS]
             for ex in EXAMPLES]  # fmt: skip
    one = model.span_probs(EXAMPLES, spans, batch_size=1)
    assert model.training
    assert [len(p) for p in one] == [len(s) for s in spans]
    for got in (model.span_probs(EXAMPLES, spans, batch_size=3), model.span_probs(EXAMPLES, spans)):
        assert [x for ps in got for x in ps] == pytest.approx([x for ps in one for x in ps], abs=1e-6)  # padding changes nothing
    model.eval()
    batch = make_batch(model.encoder, EXAMPLES[3:], model.tags)
    with torch.no_grad():
        o = model.tags.index("O")
        p_o = model.crf.marginals(model.emissions(batch["inputs"]), batch["inputs"]["word_mask"])[0, 0, o]
    # a one-word text: it is an entity of some label exactly when its tag is not O
    assert sum(one[3]) == pytest.approx(1.0 - float(p_o), abs=1e-6)
    for ex, ps, preds in zip(EXAMPLES, one, model.tag(EXAMPLES)):  # Viterbi spans carry the same probability
        for sp in preds:
            assert sp.score == pytest.approx(ps[spans[EXAMPLES.index(ex)].index(sp[:3])], abs=1e-6)
    with pytest.raises(ValueError, match="span lists"):
        model.span_probs(EXAMPLES, spans[:2])


def test_token_marginals_match_the_crf_marginals_of_each_text_alone() -> None:
    model = tagger()  # in training mode: token_marginals runs in eval mode and restores it
    got = model.token_marginals(EXAMPLES, batch_size=3)  # ragged batches, padded
    assert model.training
    assert [tuple(m.shape) for m in got] == [(len(ex), len(model.tags)) for ex in EXAMPLES]
    model.eval()
    for ex, m in zip(EXAMPLES, got):
        inputs = make_batch(model.encoder, [ex], model.tags)["inputs"]
        with torch.no_grad():
            alone = model.crf.marginals(model.emissions(inputs), inputs["word_mask"])[0]  # (T, K)
        assert torch.allclose(m, alone, atol=1e-6)
        assert torch.allclose(m.sum(-1), torch.ones(len(ex)), atol=1e-6)


def test_export_round_trip(tmp_path) -> None:
    model = tagger("bioes", entity_ratio=0.1).eval()
    with torch.no_grad():
        model.emit.bias.add_(torch.randn_like(model.emit.bias))  # make predictions non-trivial
    export(model, tmp_path / "m", {"model": {"lr": 0.1}})
    loaded = load(tmp_path / "m")
    assert loaded.tags == model.tags and loaded.scheme == "bioes" and loaded.entity_ratio == 0.1
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert loaded.tag(EXAMPLES) == model.tag(EXAMPLES)
    assert "lr: 0.1" in (tmp_path / "m" / "config.yaml").read_text()


def test_load_rejects_a_folder_without_a_model(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="tagger.json"):
        load(tmp_path)


def test_bucket_sampler_covers_everything_with_little_padding() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(1, 60) for _ in range(1000)]
    sampler = BucketBatchSampler(lengths, batch_size=32, shuffle=True, seed=1, bucket_chunks=10)
    epoch1, epoch2 = list(sampler), list(sampler)
    for batches in (epoch1, epoch2):
        assert sorted(i for b in batches for i in b) == list(range(1000))
        assert all(len(b) <= 32 for b in batches)
        padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
        assert padded < 1.15 * sum(lengths)
    assert epoch1 != epoch2  # reshuffled every epoch
    assert len(epoch1) <= len(sampler)
    ordered = list(BucketBatchSampler(lengths, batch_size=100, shuffle=False))
    flat = [lengths[i] for b in ordered for i in b]
    assert flat == sorted(flat)


def test_batch_builder_is_picklable() -> None:
    import pickle

    model = tagger()
    collate = pickle.loads(pickle.dumps(model.batch_builder))  # a DataLoader worker's copy
    batch = collate(EXAMPLES)
    assert batch["gold"][0] == [(0, 1, "PER")]
    assert batch["lattice"].mask.sum().item() == sum(len(ex) for ex in EXAMPLES)


@pytest.mark.parametrize("scheme", ["bio", "bioes"])
def test_factored_head_adds_entityness_and_label_scores(scheme: str, tmp_path) -> None:
    model = tagger(scheme, factored=True).eval()
    with torch.no_grad():
        model.factor.weight.normal_()
        model.factor.bias.normal_()
    batch = make_batch(model.encoder, EXAMPLES, model.tags, scheme)
    with torch.no_grad():
        hidden = model.encoder(batch["inputs"])  # (B, T, H)
        plain, factor = model.emit(hidden), model.factor(hidden)  # (B, T, K), (B, T, 1 + L)
        got = model.emissions(batch["inputs"])
    for k, tag in enumerate(model.tags):  # written out tag by tag, not with the spread matrix
        want = plain[..., k].clone()
        if tag != "O":
            want += factor[..., 0] + factor[..., 1 + LABELS.index(tag[2:])]
        assert torch.allclose(got[..., k], want, atol=1e-6), tag
    # a reject pushes the shared entity-ness of the rejected token down (not only its label's score)
    model.train()
    rejected = [example("Friday".split(), rejected=[(0, 0, "LOC")])]
    batch = make_batch(model.encoder, rejected, model.tags, scheme)
    model.crf.nll(model.emissions(batch["inputs"]), batch["lattice"]).sum().backward()
    assert model.factor.bias.grad[0] > 0  # gradient descent lowers entity-ness
    export(model.eval(), tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.factored and loaded.tag(EXAMPLES) == model.tag(EXAMPLES)


def test_reject_prior_needs_the_strict_lattice() -> None:
    model = tagger(reject_prior=0.5)
    plain = make_batch(model.encoder, EXAMPLES, model.tags, "bio")
    with pytest.raises(ValueError, match="strict"):
        model.loss(plain)
    strict = model.make_batch(EXAMPLES)  # the tagger adds the strict lattice its reject_prior needs
    assert strict["strict_lattice"].num_states == strict["lattice"].num_states
    assert "strict_lattice" not in tagger().make_batch(EXAMPLES)  # and only then
    exact = tagger().loss(strict)
    assert torch.isfinite(model.loss(strict)) and model.loss(strict) > exact  # the prior penalizes "PER" there
    no_rejects = model.make_batch(EXAMPLES[1:2])
    assert "strict_lattice" not in no_rejects and torch.isfinite(model.loss(no_rejects))
