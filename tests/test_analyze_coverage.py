"""scripts/analyze_coverage.py: what the first N teach answers reveal of the gold annotation, counted by hand."""

from __future__ import annotations

import json


def test_coverage_counts_named_entities_answers_and_fixed_tokens(tmp_path, load_script, capsys):
    script = load_script("analyze_coverage")
    gold = tmp_path / "gold.txt"
    gold.write_text("Bob B-PER\nSmith I-PER\nsaw O\nParis B-LOC\n. O\n\nRain O\nin O\nRome B-LOC\n. O\n\n")
    from sparse_ner.data.columns import read_columns

    corpus = list(read_columns(gold, "bio"))

    def task(sentence: int, start: int, end: int, label: str, answer: str) -> dict:
        return {"meta": {"sentence": sentence}, "answer": answer,
                "spans": [{"token_start": start, "token_end": end, "label": label}]}  # fmt: skip

    tasks = [task(0, 0, 1, "PER", "accept"), task(0, 3, 3, "ORG", "reject"), task(0, 3, 3, "LOC", "ignore"),
             task(1, 2, 2, "LOC", "accept"), task(1, 0, 0, "LOC", "reject")]  # fmt: skip
    row = script.coverage(tasks, corpus)
    assert (row["texts"], row["gold entities"], row["accept"], row["reject"], row["ignore"]) == (2, 3, 2, 2, 1)
    assert row["coverage"] == 2 / 3  # Bob Smith and Rome are named; Paris is only asked (ignored) as LOC
    assert row["tokens fixed"] == 3 / 9 and row["entities per text"] == 1.5
    assert script.coverage(tasks[:3], corpus)["coverage"] == 1 / 2  # one text: Bob Smith of Bob Smith, Paris

    teach = tmp_path / "teach.jsonl"
    texts = ["Bob Smith saw Paris .", "Rain in Rome ."]
    teach.write_text("".join(json.dumps({**t, "text": texts[t["meta"]["sentence"]], "_task_hash": i}) + "\n"
                             for i, t in enumerate(tasks)))  # fmt: skip
    assert script.main(["--teach", str(teach), "--gold", str(gold), "--encoding", "bio", "--tasks", "3", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("| 3 | 1 | 2 | 1 | 1 | 1 | 0.500 |") and lines[3].startswith("| 5 | 2 | 3 | 2 | 2 | 1 | 0.667 |")
