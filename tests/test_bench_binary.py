"""scripts/bench_binary.py: each row trains on the answers of its corpus, including a --teach file."""

from __future__ import annotations

import argparse

def value(cmd: list[str], flag: str) -> str:
    assert cmd.count(flag) == 1, (flag, cmd)
    return cmd[cmd.index(flag) + 1]


def test_rows_train_on_the_corpus_answers_or_the_teach_file(tmp_path, load_script):
    bench = load_script("bench_binary")
    args = argparse.Namespace(workdir=str(tmp_path), max_epochs=3)
    cmd, _ = bench.row_command("conll", 2000, "crf-minilm-shape", args)
    assert value(cmd, "--data.train") == str(bench.CORPORA["conll"]["teach"]) and value(cmd, "--data.max_tasks") == "2000"
    answers = tmp_path / "u_seed0" / "answers_uncertainty.jsonl"
    answers.parent.mkdir()
    answers.write_text("")
    name = bench.teach_corpus("conll", answers)
    assert name == "conll-u_seed0" and bench.CORPORA["conll"]["teach"] != answers.resolve()
    for row in ("crf-minilm-shape", "crf-minilm-shape-no-rejects", "crf-small"):
        cmd, _ = bench.row_command(name, 1000, row, args)
        assert value(cmd, "--data.train") == str(answers.resolve()) and value(cmd, "--data.max_tasks") == "1000"
    cmd, _ = bench.row_command(name, None, "crf-small", args)  # budget "all": every answer
    assert value(cmd, "--data.train") == str(answers.resolve()) and "--data.max_tasks" not in cmd
    assert value(cmd, "--run_name") == "conll-u_seed0_all_crf-small"


def test_recovery_divides_by_the_gold_of_the_same_model(load_script):
    bench = load_script("bench_binary")
    row = lambda name, f1: {"corpus": "conll", "budget": 6000, "row": name, "f1": f1, "precision": f1, "recall": f1,  # noqa: E731
                            "max_epochs": 10, "train_seconds": 1.0}  # fmt: skip
    results = [row("crf-minilm-shape-looplr", 0.8), row("crf-minilm-shape-looplr-no-rejects", 0.7),
               row("crf-minilm-shape-looplr-gold", 0.875), row("crf-minilm-gold", 0.7)]
    lines = {ln.split(" | ")[2]: ln.split(" | ")[7] for ln in bench.report(results, None).splitlines()[2:]}
    assert lines["crf-minilm-shape-looplr"] == "0.91" and lines["crf-minilm-shape-looplr-no-rejects"] == "0.80"


def test_each_panel_tells_its_rows_apart_and_drops_what_has_nothing_to_compare(load_script):
    bench = load_script("bench_binary")
    peers = {"spacy-partial-tagger", "pytorch-partial-tagger"}
    for title, rows in bench.PANELS.items():
        assert set(rows) <= set(bench.ROWS) | peers, title
        own = {}  # colour -> the row it belongs to (a gold ceiling counts as its own row's)
        for row in rows:
            colour, _ = bench.STYLE[row]
            base = row.removesuffix("-gold").removesuffix("-binary")  # spacy-gold: the ceiling of spacy-binary
            assert own.setdefault(colour, base) == base, (title, row, own[colour])
    points = {("conll", "crf-small"): {1000: 0.5}, ("conll", "spacy-binary"): {1000: 0.2},
              ("conll-u_seed0", "crf-minilm-shape-looplr"): {1000: 0.75},
              ("conll-u_seed0", "pytorch-partial-tagger"): {1000: 0.64}, ("wnut", "crf-small"): {1000: 0.3}}
    grid = dict(bench.panel_grid(points))
    assert set(grid) == {"conll", "conll-u_seed0"}  # wnut: one row, nothing to compare
    assert grid["conll"] == [("ours vs spaCy binary (Prodigy)", ["crf-small", "spacy-binary"])]
    assert grid["conll-u_seed0"] == [("MiniLM-L6: ours vs method peers", ["crf-minilm-shape-looplr",
                                                                          "pytorch-partial-tagger"])]


def test_a_taught_row_trains_again_with_its_first_rounds_model_as_teacher(tmp_path, load_script):
    import pytest

    bench = load_script("bench_binary")
    args = argparse.Namespace(workdir=str(tmp_path), max_epochs=3)
    with pytest.raises(FileNotFoundError, match="run row crf-small at this budget"):
        bench.row_command("conll", 1000, "crf-small-taught", args)
    teacher = tmp_path / "conll_1000_crf-small" / "model"
    teacher.mkdir(parents=True)
    (teacher / "tagger.json").write_text("{}")
    cmd, _ = bench.row_command("conll", 1000, "crf-small-taught", args)
    assert value(cmd, "--data.teacher") == str(teacher) and value(cmd, "--run_name") == "conll_1000_crf-small-taught"
    first, _ = bench.row_command("conll", 1000, "crf-small", args)
    assert "--data.teacher" not in first
    row = lambda name, f1: {"corpus": "conll", "budget": 1000, "row": name, "f1": f1, "precision": f1, "recall": f1,  # noqa: E731
                            "max_epochs": 10, "train_seconds": 1.0}  # fmt: skip
    results = [row("crf-minilm-shape-looplr-taught", 0.76), row("crf-minilm-shape-looplr-gold", 0.8),
               row("crf-small-gold", 0.5)]
    lines = {ln.split(" | ")[2]: ln.split(" | ")[7] for ln in bench.report(results, None).splitlines()[2:]}
    assert lines["crf-minilm-shape-looplr-taught"] == "0.95"  # its own model's gold, not the small encoder's


def test_a_seed_reaches_our_rows_training(tmp_path, load_script):
    bench = load_script("bench_binary")
    cmd, _ = bench.row_command("conll", 1000, "crf-small", argparse.Namespace(workdir=str(tmp_path), max_epochs=3, seed=2))
    assert value(cmd, "--seed_everything") == "2" and value(cmd, "--data.seed") == "2"
    cmd, _ = bench.row_command("conll", 1000, "crf-small", argparse.Namespace(workdir=str(tmp_path), max_epochs=3, seed=None))
    assert "--seed_everything" not in cmd


def test_an_unlabeled_row_adds_unanswered_texts_and_is_measured_against_its_own_gold(tmp_path, load_script):
    bench = load_script("bench_binary")
    args = argparse.Namespace(workdir=str(tmp_path), max_epochs=5, unlabeled=300)
    for base in ("crf-minilm-shape-looplr", "crf-minilm-shape-looplr-gold"):
        teacher = tmp_path / f"conll_1000_{base}" / "model"
        teacher.mkdir(parents=True)
        (teacher / "tagger.json").write_text("{}")
        cmd, _ = bench.row_command("conll", 1000, f"{base}-unlabeled", args)
        assert value(cmd, "--data.teacher") == str(teacher) and value(cmd, "--data.max_unlabeled") == "300"
        assert value(cmd, "--data.unlabeled") == str(bench.CORPORA["conll"]["teach"])
    assert "--data.unlabeled" not in bench.row_command("conll", 1000, "crf-minilm-shape-looplr-taught", args)[0]
    row = lambda name, f1: {"corpus": "conll", "budget": 1000, "row": name, "f1": f1, "precision": f1, "recall": f1,  # noqa: E731
                            "max_epochs": 5, "train_seconds": 1.0}  # fmt: skip
    results = [row("crf-minilm-shape-looplr-unlabeled", 0.76), row("crf-minilm-shape-looplr-gold", 0.95),
               row("crf-minilm-shape-looplr-gold-unlabeled", 0.8), row("crf-minilm-shape-looplr-taught", 0.76)]
    lines = {ln.split(" | ")[2]: ln.split(" | ")[7] for ln in bench.report(results, None).splitlines()[2:]}
    assert lines["crf-minilm-shape-looplr-unlabeled"] == "0.95"  # against the gold row given the same texts
    assert lines["crf-minilm-shape-looplr-taught"] == "0.80" and lines["crf-minilm-shape-looplr-gold-unlabeled"] == ""
