from hypothesis import given, settings
from hypothesis import strategies as st

from sparse_ner.data.tokenize import tokenize


def triples(text):
    return [(t.text, t.start, t.end, t.ws) for t in tokenize(text)]


def test_english_words_and_punctuation():
    assert triples("Hi, PMC-Sierra's  unit.") == [
        ("Hi", 0, 2, False),
        (",", 2, 3, True),
        ("PMC-Sierra's", 4, 16, True),
        ("unit", 18, 22, False),
        (".", 22, 23, False),
    ]


def test_trailing_hyphen_and_symbols_are_separate():
    assert [t.text for t in tokenize("well- $5 (a_b)")] == ["well", "-", "$", "5", "(", "a", "_", "b", ")"]


def test_chinese_one_token_per_character():
    text = "吴海波，2004年3月 任ABC公司"
    toks = tokenize(text)
    assert [t.text for t in toks] == ["吴", "海", "波", "，", "2004", "年", "3", "月", "任", "ABC", "公", "司"]
    assert all(text[t.start : t.end] == t.text for t in toks)
    assert [t.ws for t in toks if t.ws] == [True] and toks[7].ws


def test_japanese_and_korean():
    assert [t.text for t in tokenize("東京タワー 서울")] == ["東", "京", "タ", "ワ", "ー", "서", "울"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab'-., \n\t吴海カ한1_é"), max_size=30))
def test_offsets_exact_and_cover_all_non_space(text):
    toks = tokenize(text)
    covered = set()
    for a, b in zip(toks, toks[1:]):
        assert a.end <= b.start
    for t in toks:
        assert t.text and text[t.start : t.end] == t.text
        assert not any(c.isspace() for c in t.text)
        assert t.ws == (t.end < len(text) and text[t.end].isspace())
        covered.update(range(t.start, t.end))
    assert covered == {i for i, c in enumerate(text) if not c.isspace()}
