"""scripts/simulate_seeds.py: the summary over seeds, overall and per label."""

from __future__ import annotations

import csv


def write_curves(path, rows):
    path.parent.mkdir(parents=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_summary_means_overall_and_per_label(tmp_path, load_script):
    script = load_script("simulate_seeds")
    for seed, (f1, loc, org) in enumerate([(0.6, 0.8, 0.0), (0.7, 0.9, 0.1)]):
        write_curves(tmp_path / f"default_seed{seed}" / "curves.csv", [
            {"strategy": "uncertainty", "answers": 0, "accepts": 0, "precision": 0, "recall": 0, "f1": 0,
             "seconds": 1, "f1_LOC": 0, "f1_ORG": 0, "accepts_LOC": 0, "accepts_ORG": 0},
            {"strategy": "uncertainty", "answers": 500, "accepts": 9, "precision": 0, "recall": 0, "f1": f1,
             "seconds": 1, "f1_LOC": loc, "f1_ORG": org, "accepts_LOC": 9, "accepts_ORG": 0},
        ])  # fmt: skip
    # a run from before the per-label columns: counted overall, not per label
    write_curves(tmp_path / "default_seed2" / "curves.csv", [
        {"strategy": "uncertainty", "answers": 500, "accepts": 9, "precision": 0, "recall": 0, "f1": 0.8, "seconds": 1}])
    table = script.summarize(tmp_path).splitlines()
    assert "| 500 | 0.700 (0.600-0.800, n=3) |" in table
    assert "Mean F1 of each label (LOC / ORG):" in table
    assert "| 500 | 0.850 / 0.050 |" in table
    assert (tmp_path / "curves_mean.png").stat().st_size > 0
