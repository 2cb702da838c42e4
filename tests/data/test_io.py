"""The one JSONL reader and writer: BOM, invalid UTF-8, skip counts, atomic writes, no writing over an input."""

from __future__ import annotations

import pytest

from sparse_ner.data.io import DataError, read_jsonl, write_jsonl
from sparse_ner.data.prodigy import ReadStats


def test_bom_is_accepted_and_invalid_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "x"}\n\n{"text": "caf\xe9"}\n{"text": "y"}\n')
    with pytest.raises(DataError, match=r"a.jsonl:3: not valid UTF-8"):
        list(read_jsonl(path))
    stats = ReadStats()
    assert list(read_jsonl(path, on_error="skip", stats=stats)) == [(1, {"text": "x"}), (4, {"text": "y"})]
    assert stats.counts["malformed_json"] == 1


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        list(read_jsonl(tmp_path))


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"old": 1}\n')

    def records():
        yield {"new": 1}
        raise RuntimeError("input broke halfway")

    with pytest.raises(RuntimeError):
        write_jsonl(records(), out)
    assert out.read_text() == '{"old": 1}\n' and [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    assert write_jsonl([{"new": 1}, {"new": 2}], out) == 2
    assert [r for _, r in read_jsonl(out)] == [{"new": 1}, {"new": 2}]


def test_writing_over_an_input_is_refused(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "x"}\n')
    with pytest.raises(DataError, match="over its own input"):
        write_jsonl((r for _, r in read_jsonl(path)), tmp_path / "." / "in.jsonl", inputs=[path])
    assert path.read_text() == '{"text": "x"}\n'


def test_parse_tokens_checks_given_tokens_and_tokenizes_otherwise():
    from sparse_ner.data.prodigy import parse_tokens

    assert [t.text for t in parse_tokens({"text": "Bob met Alice ."})] == ["Bob", "met", "Alice", "."]
    good = {"text": "ab cd", "tokens": [{"text": "ab", "start": 0, "end": 2}, {"text": "cd", "start": 3, "end": 5}]}
    assert [(t.text, t.start, t.end, t.ws) for t in parse_tokens(good)] == [("ab", 0, 2, True), ("cd", 3, 5, False)]
    spaced = {"text": "ab cd", "tokens": [{"start": 0, "end": 2, "ws": False}, {"start": 3, "end": 5, "ws": 1}]}
    assert [t.ws for t in parse_tokens(spaced)] == [False, True]  # a given "ws" wins over the text
    for bad in ({"text": "ab cd", "tokens": [{"text": "xx", "start": 0, "end": 2}]},
                {"text": "ab cd", "tokens": [{"start": 3, "end": 5}, {"start": 0, "end": 2}]},
                {"text": "ab", "tokens": [{"start": 0, "end": 9}]}, {"tokens": []},
                {"text": "ab", "tokens": [{"start": False, "end": True}]},  # bools are ints to Python, not here
                {"text": "ab", "tokens": [{"start": 0, "end": 2.0}]}, {"text": "ab", "tokens": [["ab"]]},
                {"text": "ab", "tokens": [{"start": 0, "end": 2, "text": None}]}):  # fmt: skip
        with pytest.raises(DataError, match="line 7"):
            parse_tokens(bad, where="in.jsonl line 7")


def test_an_unknown_label_names_the_known_ones(tmp_path):
    import json

    from sparse_ner.data.read import read_any

    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps({"text": t, "answer": "accept", "spans": [{"start": 0, "end": 3, "label": lab}]})
                            + "\n" for t, lab in [("Bob ran", "FOO"), ("Ann ran", "PER")]))  # fmt: skip
    messages: list[str] = []
    examples = read_any(path, gold=False, labels=["PER", "ORG"], report=messages.append)
    assert len(examples) == 1 and "outside the label set PER, ORG" in messages[0]
