"""What the prediction-time O bias (``--model.o_bias auto``) does to trained models, without retraining.

    python scripts/bench_o_bias.py MODEL [MODEL ...] [--dev FILE] [--test FILE] [--results FILE]

For each exported model folder: the bias is tuned on ``--dev`` exactly as training does it
(:func:`sparse_ner.training.o_bias.tune_o_bias`: the encoder run once over dev, the Viterbi spans
at each bias of ``GRID``, the best entity F1, ties to the bias nearest 0), then ``--test`` is scored
at bias 0 and at the chosen bias (and at every bias of the grid, kept in the JSON row). The models'
own stored bias is ignored. ``--dev`` may be gold (CoNLL columns or complete JSONL) or binary answers
(db-out), as a training's dev can be; training tunes on the complete texts when there are any, else on
the answers among the biases >= 0. ``--binary-f1`` instead picks the bias by the F1 over all dev
texts and all biases, binary answers included (what training did at first; the experiment that
showed why not). Defaults: CoNLL-2003 dev and test from ../shared/data.
Prints a Markdown table; one JSON line per model is appended to ``--results``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def batches(tagger, examples: list, size: int = 64):
    for i in range(0, len(examples), size):
        yield tagger.make_batch(examples[i : i + size])


def run(model: Path, dev_path: Path, test_path: Path, encoding: str, dev_tasks: int | None, binary_f1: bool = False) -> dict:
    from sparse_ner.core.export import load
    from sparse_ner.data.read import read_any
    from sparse_ner.training.o_bias import GRID, best_of, collect, f1_at, tune_o_bias

    tagger = load(model)
    stored = tagger.o_bias
    tagger.o_bias = 0.0
    read = lambda path, limit=None: [ex for ex in read_any(path, gold="auto", labels=tagger.labels, column_encoding=encoding,  # noqa: E731
                                                          max_records=limit, name=str(path)) if ex.tokens]  # fmt: skip
    dev, test = read(dev_path, dev_tasks), read(test_path)
    t0 = time.process_time()
    if binary_f1:  # every dev text, binary answers scored as EntityF1 scores them
        cached_dev = collect(tagger, batches(tagger, dev))
        dev_scores = {b: f1_at(tagger, cached_dev, b) for b in GRID}
        best = best_of(dev_scores)
    else:
        best, dev_scores = tune_o_bias(tagger, batches(tagger, dev))
    tune_s = time.process_time() - t0
    cached = collect(tagger, batches(tagger, test))
    test_scores = {b: f1_at(tagger, cached, b) for b in GRID}
    return {"model": str(model), "stored_o_bias": stored, "chosen": best, "dev": str(dev_path),
            "dev_texts": len(dev), "test": str(test_path), "dev_scores": dev_scores, "test_scores": test_scores,
            "binary_f1": binary_f1, "dev_f1_0": dev_scores[0.0]["f1"], "dev_f1": dev_scores[best]["f1"],
            "test_f1_0": test_scores[0.0]["f1"],
            "test_f1": test_scores[best]["f1"], "test_p": test_scores[best]["precision"],
            "test_r": test_scores[best]["recall"], "tune_cpu_s": round(tune_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help="exported model folders")
    ap.add_argument("--dev", type=Path, default=DATA / "conll2003" / "dev.txt")
    ap.add_argument("--dev-tasks", type=int, default=None, help="only the first N records of --dev (binary answers)")
    ap.add_argument("--test", type=Path, default=DATA / "conll2003" / "test.txt")
    ap.add_argument("--encoding", default="iob1")
    ap.add_argument("--binary-f1", action="store_true", help="pick the bias by the F1 over all dev texts, binary "
                    "answers included (not what training does)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", type=Path, default=None, help="append one JSON line per model here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print("| model | chosen bias | dev F1 at 0 / chosen | test F1 at 0 / chosen | test P / R at chosen |")
    print("|---|---:|---:|---:|---:|")
    for model in args.models:
        row = run(model, args.dev, args.test, args.encoding, args.dev_tasks, args.binary_f1)
        row.update(commit=commit, machine=f"{platform.machine()} {platform.node()}", threads=args.threads,
                   date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="minutes"))
        name = model.parent.name if model.name == "model" else model.name
        print(f"| {name} | {row['chosen']:+.1f} | {row['dev_f1_0']:.4f} / {row['dev_f1']:.4f} | "
              f"{row['test_f1_0']:.4f} / {row['test_f1']:.4f} | {row['test_p']:.3f} / {row['test_r']:.3f} |", flush=True)
        if args.results:
            with args.results.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
