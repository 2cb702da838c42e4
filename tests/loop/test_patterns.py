"""Patterns JSONL: reading, validation with line numbers, phrase and token matches on given tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


from sparse_ner.data.io import DataError  # noqa: E402
from sparse_ner.loop.patterns import Match, PatternMatcher, read_patterns  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "patterns_conll.jsonl"


def write(tmp_path: Path, lines: list) -> Path:
    path = tmp_path / "patterns.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_example_file_reads_and_matches():
    patterns = read_patterns(EXAMPLE, ["LOC", "MISC", "ORG", "PER"])
    assert 20 <= len(patterns) <= 40
    matcher = PatternMatcher(patterns)
    words = "John Smith of Microsoft flew from Paris to the United States .".split()
    keys = {m[:3] for m in matcher(words)}
    assert {(0, 1, "PER"), (3, 3, "ORG"), (6, 6, "LOC"), (9, 10, "LOC")} <= keys


def test_phrase_token_and_overlap(tmp_path):
    path = write(tmp_path, [
        {"label": "ORG", "pattern": "New York Times"},
        {"label": "LOC", "pattern": "New York", "id": "ny"},
        {"label": "ORG", "pattern": [{"lower": "apple"}]},
        {"label": "LOC", "pattern": "U.S."},
    ])  # fmt: skip
    matcher = PatternMatcher(read_patterns(path))
    got = matcher(["The", "New", "York", "Times", "and", "APPLE", "in", "the", "U.S.", "apple"])
    assert got == [
        Match(1, 2, "LOC", "ny"),
        Match(1, 3, "ORG", "1"),
        Match(5, 5, "ORG", "3"),
        Match(8, 8, "LOC", "4"),
        Match(9, 9, "ORG", "3"),
    ]
    # the same phrase tokenized by sparse_ner's tokenizer (U . S .) also matches
    assert matcher(["in", "the", "U", ".", "S", "."]) == [Match(2, 5, "LOC", "4")]
    assert matcher([]) == []
    # phrases are case-sensitive, like Prodigy's default
    assert matcher(["new", "york"]) == []


def test_unique_per_span_first_pattern_wins(tmp_path):
    path = write(tmp_path, [{"label": "PER", "pattern": "Ann"}, {"label": "PER", "pattern": [{"orth": "Ann"}]}])
    assert PatternMatcher(read_patterns(path))(["Ann"]) == [Match(0, 0, "PER", "1")]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "malformed JSON"),
        (json.dumps({"pattern": "x"}), "'label' and 'pattern'"),
        (json.dumps({"label": "ORG", "pattern": ""}), "empty phrase"),
        (json.dumps({"label": "ORG", "pattern": 3}), "phrase string or a non-empty list"),
        (json.dumps({"label": "ORG", "pattern": [{"pos": "PROPN"}]}), "trained spaCy pipeline"),
        (json.dumps({"label": "FOO", "pattern": "x"}), "label 'FOO'"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path, [{"label": "ORG", "pattern": "ok"}, "", line])
    with pytest.raises(DataError, match=message) as err:
        read_patterns(path, labels=["ORG"])
    assert f"{path}:3" in str(err.value)


def test_invalid_token_attribute_is_refused_by_spacy(tmp_path):
    path = write(tmp_path, [{"label": "ORG", "pattern": [{"nonsense": "x"}]}])
    with pytest.raises(Exception):
        PatternMatcher(read_patterns(path))


PINNED = [
    {"label": "ORG", "pattern": "New York Times"},
    {"label": "LOC", "pattern": "U.S."},
    {"label": "ORG", "pattern": [{"LOWER": "apple"}]},
    {"label": "ORG", "pattern": [{"lower": {"in": ["acme", "école"]}}, {"is_title": True, "op": "?"}]},
    {"label": "PER", "pattern": [{"orth": "Ann"}, {"is_title": True}]},
    {"label": "PER", "pattern": [{"TEXT": {"IN": ["Bob", "Bo"]}}]},
]
PINNED_LATER = [  # the first token may be absent or is not a word, a later one must be there
    [{"is_title": True}, {"lower": "corp"}],
    [{"lower": "the", "op": "?"}, {"lower": "apple"}],
    [{"lower": {"not_in": ["x"]}}, {"lower": "corp"}],
    [{"is_title": True, "op": "+"}, {"LOWER": {"IN": ["ltd", "corp"]}, "OP": "+"}],
    [{"orth": "x", "op": "!"}, {"TEXT": "Lee"}],
]
UNPINNED = [  # no token that must occur is pinned to words: every text must be matched
    [{"lower": {"regex": "^ac"}}],
    [{"is_title": True}, {"lower": "corp", "op": "?"}],
    [{"lower": "acme", "op": "*"}, {"is_upper": True}],
    [{"orth": "Ann", "op": "!"}, {"is_title": True}],
]


def test_texts_without_a_key_word_are_skipped_and_nothing_else_changes(tmp_path):
    import random

    from sparse_ner.loop.patterns import key_words

    vocab = ["New", "York", "Times", "U.S.", "U", ".", "S", "apple", "APPLE", "Apple", "acme", "Acme", "école",
             "École", "Ann", "Lee", "Bob", "Bo", "the", "Corp", "corp", "CORP", "x", "Ltd", "a", "The", "ACME"]  # fmt: skip
    rng = random.Random(0)
    texts = [[rng.choice(vocab) for _ in range(rng.randint(1, 8))] for _ in range(600)]
    skipped = 0
    for extra in [None, *PINNED_LATER, *UNPINNED]:
        lines = PINNED + ([{"label": "ORG", "pattern": extra}] if extra else [])
        matcher = PatternMatcher(read_patterns(write(tmp_path, lines)))
        assert (matcher._keys is None) == (extra in UNPINNED), extra
        full = PatternMatcher(read_patterns(write(tmp_path, lines)))
        full._keys = None  # match every text
        found = [matcher(t) for t in texts]
        assert found == [full(t) for t in texts], extra
        if matcher._keys is not None:
            skipped += sum(not matcher._keys.could_match(t) for t in texts)
    assert skipped > 0  # the check above compared skipped texts too
    keys = key_words(read_patterns(write(tmp_path, PINNED)), PatternMatcher([]).nlp)
    assert keys is not None and {"New", "U.S.", "U", "Ann", "Bob", "Bo"} <= keys.exact
    assert keys.lower == {"apple", "acme", "école"}
    assert not keys.could_match(["york", "times", "ann", "Lee"]) and keys.could_match(["ÉCOLE"])
    later = key_words(read_patterns(write(tmp_path, [{"label": "ORG", "pattern": p} for p in PINNED_LATER])),
                      PatternMatcher([]).nlp)  # fmt: skip
    assert later == ({"Lee"}, {"corp", "apple", "ltd"})
    assert not later.could_match(["Acme", "Ltda", "Leeds"]) and later.could_match(["ACME", "CORP"])


def test_plain_token_patterns_match_as_spacys_matcher_does(tmp_path):
    """Token patterns that are plain phrases run on a PhraseMatcher; the matches are spaCy Matcher's."""
    import random

    import spacy
    from spacy.matcher import Matcher
    from spacy.tokens import Doc

    from sparse_ner.loop.patterns import as_phrase

    token_patterns = [
        [{"LOWER": "apple"}], [{"lower": "new"}, {"lower": "york"}], [{"ORTH": "New"}, {"TEXT": "York"}],
        [{"lower": "New"}], [{"LOWER": "école"}], [{"orth": "U.S."}], [{"lower": "york"}, {"ORTH": "Times"}],
        [{"LOWER": "new", "IS_TITLE": True}], [{"lower": "the"}, {"lower": "new"}, {"lower": "york"}],
    ]  # fmt: skip
    assert [as_phrase(p) is not None for p in token_patterns] == [True, True, True, False, True, True, False, False, True]
    lines = [{"label": ["ORG", "LOC"][i % 2], "pattern": p} for i, p in enumerate(token_patterns)]
    matcher = PatternMatcher(read_patterns(write(tmp_path, lines)))
    nlp = spacy.blank("en")
    reference = Matcher(nlp.vocab)
    for i, p in enumerate(token_patterns):
        reference.add(str(i), [p])
    vocab = ["New", "new", "NEW", "York", "york", "Times", "apple", "Apple", "école", "École", "U.S.", "the", "The"]
    rng = random.Random(1)
    for _ in range(500):
        words = [rng.choice(vocab) for _ in range(rng.randint(1, 7))]
        hits = sorted((int(nlp.vocab.strings[k]), s, e) for k, s, e in reference(Doc(nlp.vocab, words=words)))
        expected: dict = {}
        for i, s, e in hits:
            expected.setdefault((s, e - 1, lines[i]["label"]), str(i + 1))
        assert matcher(words) == [Match(s, e, lab, pid) for (s, e, lab), pid in sorted(expected.items())], words


def test_match_examples_keep_the_longest_of_overlapping_matches_as_binary_accepts():
    from sparse_ner.loop.patterns import match_examples

    matcher = PatternMatcher([{"label": "LOC", "pattern": "New York"}, {"label": "ORG", "pattern": "York"},
                              {"label": "LOC", "pattern": "York City"}, {"label": "PER", "pattern": "Ann"}])  # fmt: skip
    texts = [["Ann", "left", "New", "York", "City", "."], ["nothing", "here"], ["York", "and", "Ann"]]
    first, third = match_examples(matcher, texts)  # the text without a match is left out
    # "New York" and "York City" are both two words: the first wins; "York" (inside it) is dropped
    assert [s.key for s in first.accepted] == [(0, 0, "PER"), (2, 3, "LOC")]
    assert [s.key for s in third.accepted] == [(0, 0, "ORG"), (2, 2, "PER")]
    assert not first.complete and not first.rejected  # the other words stay unannotated
    assert first.words == texts[0]
    assert [first.text[s.start : s.end] for s in first.accepted] == ["Ann", "New York"]
