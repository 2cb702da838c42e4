"""Repeat the annotation-loop simulation over seeds and summarize the curves (mean, min, max).

    python scripts/simulate_seeds.py --config configs/simulate_conll.yaml --seeds 0 1 2 \
        --strategies uncertainty random static --tag default --out bench_results/simulate
    python scripts/simulate_seeds.py --config configs/simulate_conll.yaml --seeds 0 1 2 \
        --strategies uncertainty --by-text --tag by_text --out bench_results/simulate
    python scripts/simulate_seeds.py --seeds 0 --strategies uncertainty --set online.calibrate=false \
        --tag uncalibrated --out bench_results/simulate

Run from the repository root (the config's paths are relative to it). Each (tag, seed) runs
:func:`sparse_ner.loop.simulate.simulate` into ``OUT/TAG_seedN`` unless its ``curves.csv`` is already
there (so the script resumes). Then every ``OUT/*_seed*/curves.csv`` is read and a Markdown table of
dev F1 per strategy and answer count (mean, and min-max over seeds) is printed, and
``OUT/curves_mean.png`` is drawn (mean line, min-max band).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_seeds(args: argparse.Namespace, out: Path) -> None:
    config = yaml.safe_load(Path(args.config).read_text(encoding="utf8"))
    if args.by_text:
        config["sorter"] = {**(config.get("sorter") or {}), "by_text": True}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes KEY=VALUE (VALUE in YAML; KEY may be dotted, e.g. online.calibrate), not {item!r}")
        *parents, leaf = key.split(".")
        node = config
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = yaml.safe_load(value)

    from sparse_ner.loop.simulate import load_config, simulate

    for seed in args.seeds:
        folder = out / f"{args.tag}_seed{seed}"
        if (folder / "curves.csv").exists():
            print(f"--- {folder}: done already", flush=True)
            continue
        print(f"--- {folder}: strategies {' '.join(args.strategies)}, seed {seed}", flush=True)
        cfg = load_config(None, {**config, "seed": seed, "output": str(folder), "strategies": args.strategies})
        rows = simulate(cfg)
        for strategy in args.strategies:
            last = [r for r in rows if r["strategy"] == strategy][-1]
            print(f"{strategy:<12} answers={last['answers']:>5} f1={last['f1']:.4f}", flush=True)


def summarize(out: Path) -> str:
    """Markdown table over every ``OUT/*_seed*/curves.csv`` (then, where the curves have them, the mean
    F1 of each label); draws ``OUT/curves_mean.png``."""
    f1: dict[tuple[str, int], list[float]] = defaultdict(list)
    per_label: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(out.glob("*_seed*/curves.csv")):
        tag = path.parent.name.rsplit("_seed", 1)[0]
        with open(path, encoding="utf8") as f:
            for row in csv.DictReader(f):
                name = row["strategy"] if tag == "default" else f"{row['strategy']} ({tag})"
                f1[(name, int(row["answers"]))].append(float(row["f1"]))
                for key, value in row.items():
                    if key.startswith("f1_") and value not in ("", None):
                        per_label[(name, int(row["answers"]))][key[3:]].append(float(value))
    names = list(dict.fromkeys(name for name, _ in f1))
    points = sorted({n for _, n in f1 if n > 0})
    lines = ["| answers | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for n in points:
        cells = []
        for name in names:
            xs = f1.get((name, n), [])
            cells.append(f"{statistics.mean(xs):.3f} ({min(xs):.3f}-{max(xs):.3f}, n={len(xs)})" if xs else "")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    labels = list(dict.fromkeys(label for by in per_label.values() for label in by))
    if labels:
        lines += ["", "Mean F1 of each label (" + " / ".join(labels) + "):", "",
                  "| answers | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]  # fmt: skip
        for n in points:
            cells = [" / ".join(f"{statistics.mean(per_label[(name, n)][label]):.3f}" if per_label[(name, n)][label]
                                else "-" for label in labels) for name in names]  # fmt: skip
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in names:
        xs = [n for n in [0, *points] if f1.get((name, n))]
        ax.plot(xs, [statistics.mean(f1[(name, n)]) for n in xs], marker="o", label=name)
        ax.fill_between(xs, [min(f1[(name, n)]) for n in xs], [max(f1[(name, n)]) for n in xs], alpha=0.15)
    ax.set_xlabel("answers")
    ax.set_ylabel("dev entity F1 (mean, min-max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves_mean.png", dpi=120)
    plt.close(fig)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs/simulate_conll.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--strategies", nargs="+", default=["uncertainty", "random", "static"])
    ap.add_argument("--by-text", action="store_true", help="uncertainty sorter selects whole texts")
    ap.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                    help="config overrides, e.g. dev_limit=0 online.calibrate=false sorter.bias=0")
    ap.add_argument("--tag", default="default", help="name of this variant in the summary")
    ap.add_argument("--out", default=str(ROOT / "bench_results/simulate"))
    ap.add_argument("--summary-only", action="store_true", help="only summarize the runs in --out")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        run_seeds(args, out)
    print(summarize(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
