"""The typed library functions behind the commands: fit, review, merge, predict_file, convert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthetic import make_corpus


def test_fit_refuses_a_typo_before_training(tmp_path: Path) -> None:
    from jsonargparse import ArgumentError

    from sparse_ner.training.train import fit

    paths = make_corpus(tmp_path)
    with pytest.raises((ArgumentError, SystemExit, ValueError)):
        fit(data={"trian": str(paths["train"]), "dev": str(paths["dev"])})
    assert not (tmp_path / "runs").exists()


def test_review_needs_exactly_one_of_model_and_config(tmp_path: Path) -> None:
    from sparse_ner.review.run import review

    paths = make_corpus(tmp_path)
    with pytest.raises(ValueError):
        review(paths["train"], tmp_path / "r.jsonl")
    with pytest.raises(ValueError):
        review(paths["train"], tmp_path / "r.jsonl", model=tmp_path, config="configs/wikigold_quickstart.yaml")
    assert not (tmp_path / "r.jsonl").exists()


def test_merge_files_and_outputs_never_over_inputs(tmp_path: Path) -> None:
    from sparse_ner.data.io import DataError
    from sparse_ner.review.merge import merge

    original = tmp_path / "orig.jsonl"
    records = [{"text": "Bob ran .", "_input_hash": 1, "_task_hash": 11, "answer": "accept", "_view_id": "ner",
                "spans": [{"start": 0, "end": 3, "token_start": 0, "token_end": 0, "label": "PER"}]},
               {"text": "Ann sat .", "_input_hash": 2, "_task_hash": 21, "answer": "accept", "_view_id": "ner",
                "spans": [{"start": 0, "end": 3, "token_start": 0, "token_end": 0, "label": "ORG"}]}]  # fmt: skip
    original.write_text("".join(json.dumps(r) + "\n" for r in records))
    fix = {**records[1], "spans": [{**records[1]["spans"][0], "label": "PER"}], "_task_hash": 99}
    corrections = tmp_path / "fix.jsonl"
    corrections.write_text(json.dumps(fix) + "\n")
    counts = merge(original, corrections, tmp_path / "merged.jsonl")
    merged = [json.loads(line) for line in (tmp_path / "merged.jsonl").read_text().splitlines()]
    assert counts["replaced"] == 1 and merged[0] == records[0] and merged[1]["spans"][0]["label"] == "PER"
    before = original.read_text()
    with pytest.raises(DataError, match="own input"):
        merge(original, corrections, original)
    assert original.read_text() == before


def test_convert_refuses_to_write_over_its_input(tmp_path: Path) -> None:
    from sparse_ner.data.convert import convert
    from sparse_ner.data.io import DataError

    paths = make_corpus(tmp_path)
    before = Path(paths["dev"]).read_text()
    with pytest.raises(DataError, match="own input"):
        convert(paths["dev"], paths["dev"])
    assert Path(paths["dev"]).read_text() == before


def test_public_names_resolve_even_after_the_subpackages_are_imported() -> None:
    import sparse_ner
    import sparse_ner.review.score  # noqa: F401  (sets the attribute `review` to the subpackage)
    from sparse_ner.review.merge import merge
    from sparse_ner.review.run import review

    assert sparse_ner.review_file is review and sparse_ner.merge_files is merge
    assert all(getattr(sparse_ner, name) is not None for name in sparse_ner.__all__)
