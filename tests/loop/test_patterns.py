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
