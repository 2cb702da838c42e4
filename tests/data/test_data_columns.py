from pathlib import Path

import pytest
import srsly

from sparse_ner.cli.convert import main as convert_main
from sparse_ner.data.columns import make_example, read_columns, read_documents, write_columns
from sparse_ner.data.io import DataError
from sparse_ner.data.prodigy import ReadStats, examples_to_tasks, read_examples

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

SENTENCES = [
    # (words, token spans): adjacent same-label entities, single tokens, entity at the end
    ("EU rejects German call to boycott British lamb .".split(), [(0, 0, "ORG"), (2, 2, "MISC"), (6, 6, "MISC")]),
    ("Peter Blackburn met Anna Smith Jones".split(), [(0, 1, "PER"), (3, 5, "PER")]),
    ("Paris London Berlin".split(), [(0, 0, "LOC"), (1, 1, "LOC"), (2, 2, "LOC")]),
    ("nothing here".split(), []),
]


def gold():
    from sparse_ner.tags import encode_spans

    return [make_example(w, encode_spans(len(w), spans, "iob2"), "iob2") for w, spans in SENTENCES]


def summary(examples):
    return [(ex.text, [(s.start, s.end, s.token_start, s.token_end, s.label) for s in ex.accepted], ex.complete) for ex in examples]


@pytest.mark.parametrize("encoding", ["iob1", "iob2", "bio", "bioes", "bmes"])
def test_round_trip_columns_and_jsonl(tmp_path, encoding):
    examples = gold()
    assert [[s.key for s in ex.accepted] for ex in examples] == [spans for _, spans in SENTENCES]
    col = tmp_path / "gold.txt"
    assert write_columns(examples, col, encoding) == len(examples)
    back = list(read_columns(col, encoding))
    assert summary(back) == summary(examples)
    jsonl = tmp_path / "gold.jsonl"
    srsly.write_jsonl(jsonl, examples_to_tasks(back))
    stats = ReadStats()
    again = read_examples(jsonl, stats=stats)
    assert stats.counts == {"used": len(examples)}
    assert summary(again) == summary(examples)
    col2 = tmp_path / "again.txt"
    write_columns(again, col2, encoding)
    assert col2.read_text() == col.read_text()


def test_iob1_tags_written_as_iob1(tmp_path):
    write_columns(gold()[2:3], tmp_path / "x", "iob1")
    assert (tmp_path / "x").read_text() == "Paris I-LOC\nLondon B-LOC\nBerlin B-LOC\n\n"


def test_chinese_text_without_spaces_and_exact_offsets(tmp_path):
    path = tmp_path / "zh.bmes"
    path.write_text("高 B-NAME\n勇 E-NAME\n： O\n1 O\n9 O\n中 B-CONT\n国 M-CONT\n籍 E-CONT\n\n", encoding="utf8")
    (ex,) = read_columns(path, "bmes")
    assert ex.text == "高勇：19中国籍"
    assert all(ex.text[t.start : t.end] == t.text and not t.ws for t in ex.tokens)
    assert [(ex.text[s.start : s.end], s.label) for s in ex.accepted] == [("高勇", "NAME"), ("中国籍", "CONT")]
    (spaced,) = read_columns(path, "bmes", sep=" ")
    assert spaced.text == "高 勇 ： 1 9 中 国 籍" and spaced.accepted[1].start == 10


def test_documents_tab_separators_and_columns(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text(
        "-DOCSTART- -X- O O\n\nEU NNP I-ORG\nrejects VBZ O\n\n\n"
        "-DOCSTART- -X- O O\n\nPeter NNP I-PER\n\t\nBlackburn NNP I-PER\n",
        encoding="utf8",
    )
    docs = read_documents(path, "iob1")
    assert [[ex.text for ex in doc] for doc in docs] == [["EU rejects"], ["Peter", "Blackburn"]]
    with pytest.raises(DataError, match=r"docs\.txt:3:"):  # column 1 holds POS tags, not entity tags
        list(read_columns(path, "iob1", column=1))
    first = next(read_columns(path, "iob1", column=2))
    assert [s.key for s in first.accepted] == [(0, 0, "ORG")]


def test_tab_separated_token_may_contain_space(tmp_path):
    path = tmp_path / "tab.conll"
    path.write_text("New York\tB-location\nrocks\tO\n", encoding="utf8")
    (ex,) = read_columns(path, "iob2")
    assert ex.words == ["New York", "rocks"] and ex.accepted[0].key == (0, 0, "location")
    with pytest.raises(ValueError, match="whitespace"):
        write_columns([ex], tmp_path / "out", "iob2")


@pytest.mark.parametrize("line", ["lonely\n", "word X-PER\n", "word B_PER\n", "word E-PER\n"])
def test_malformed_line_reported_with_line_number(tmp_path, line):
    path = tmp_path / "bad.txt"
    path.write_text("ok O\n\nfine O\n" + line, encoding="utf8")
    with pytest.raises(DataError, match=r"bad\.txt:4:"):
        list(read_columns(path))


def test_write_refuses_sparse(tmp_path):
    ex = gold()[0]
    ex.complete = False
    with pytest.raises(ValueError, match="sparse"):
        write_columns([ex], tmp_path / "x.txt")


def test_convert_cli_round_trip(tmp_path, capsys):
    col = tmp_path / "gold.txt"
    write_columns(gold(), col, "bioes")
    assert convert_main([str(col), str(tmp_path / "g.jsonl"), "--from", "bioes"]) == 0
    assert convert_main([str(tmp_path / "g.jsonl"), str(tmp_path / "back.txt"), "--to", "bioes"]) == 0
    assert (tmp_path / "back.txt").read_text() == col.read_text()
    assert "used" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cannot infer the format"):
        convert_main([str(col), str(tmp_path / "x.txt")])


def test_convert_refuses_sparse_to_columns(tmp_path, capsys):
    srsly.write_jsonl(tmp_path / "t.jsonl", [{"text": "Anna met Bob", "spans": [{"start": 0, "end": 4, "label": "PER"}], "answer": "accept"}])
    with pytest.raises(ValueError, match="is sparse"):
        convert_main([str(tmp_path / "t.jsonl"), str(tmp_path / "t.txt"), "--to", "iob2"])
    assert not (tmp_path / "t.txt").exists()


@pytest.mark.skipif(not (SHARED / "wikigold").is_dir(), reason="shared/data/wikigold not available")
def test_wikigold_counts():
    docs = read_documents(SHARED / "wikigold" / "wikigold.conll.txt", "iob1")
    assert len(docs) == 145
    sentences = [ex for doc in docs for ex in doc]
    assert len(sentences) == 1696 and sum(len(ex) for ex in sentences) == 39007
    assert sum(len(ex.accepted) for ex in sentences) == 3558
