"""Benchmark: find deliberately corrupted CoNLL-2003 annotations by ranking sentences for review.

The first ``--sentences`` sentences of CoNLL-2003 train are corrupted with a fixed seed the ways
annotators err: the label of 5% of the entities is swapped for another, 2% get one boundary shifted
by one token, 2% are deleted (disjoint sets of entities). A tagger is trained on the corrupted data
(in-sample), and K taggers on K-1 folds each (out-of-fold, K from ``--folds``); every sentence is
then ranked by each method and we report, for finding the corrupted sentences, precision at k
(k = number of corrupted sentences), AUPRC (average precision) and AUROC:

- our scores (:mod:`sparse_ner.review`), on in-sample and on out-of-fold probabilities;
- per-example F1 of prediction vs annotation (the Prodigy community recipe's method), ``f1``;
- cleanlab's ``token_classification.rank.get_label_quality_scores`` (worst token's self-confidence)
  on the same model's per-token entity-type probabilities (CRF marginals summed over B-/I-).

Run from the repository root (CoNLL-2003 is research-only: it is read from ../shared/data, never
copied into the repository)::

    python scripts/bench_review.py --sentences 1000 --dev-sentences 300 --epochs 3 --folds 2 3 --json bench_review.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sparse_ner.data.columns import read_columns  # noqa: E402
from sparse_ner.data.example import Example, Span  # noqa: E402
from sparse_ner.review.score import SCORES, Review, score_examples  # noqa: E402

LABELS = ["LOC", "MISC", "ORG", "PER"]


def corrupt(examples: list[Example], seed: int = 0, swap: float = 0.05, shift: float = 0.02,
            delete: float = 0.02) -> tuple[list[Example], set[int], dict[str, int]]:  # fmt: skip
    """Corrupted copies of ``examples``, the indices of the changed sentences, and counts per error."""
    rng = random.Random(seed)
    entities = [(i, j) for i, ex in enumerate(examples) for j in range(len(ex.accepted))]
    rng.shuffle(entities)
    n = len(entities)
    n_swap, n_shift, n_delete = round(swap * n), round(shift * n), round(delete * n)
    plan: dict[tuple[int, int], str] = {}
    for k, key in enumerate(entities[: n_swap + n_shift + n_delete]):
        plan[key] = "swap" if k < n_swap else ("shift" if k < n_swap + n_shift else "delete")
    out, changed, counts = [], set(), {"swap": 0, "shift": 0, "delete": 0, "shift_impossible": 0}
    for i, ex in enumerate(examples):
        keys = [s.key for s in ex.accepted]
        new: list[tuple[int, int, str]] = []
        for j, (s, e, label) in enumerate(keys):
            what = plan.get((i, j))
            if what == "swap":
                new.append((s, e, rng.choice([x for x in LABELS if x != label])))
            elif what == "delete":
                pass
            elif what == "shift":
                others = new + keys[j + 1 :]  # spans placed so far (maybe shifted) and those still to come
                options = [(s + ds, e + de, label) for ds, de in ((-1, 0), (1, 0), (0, -1), (0, 1))
                           if 0 <= s + ds <= e + de < len(ex)
                           and not any(a <= e + de and s + ds <= b for a, b, _ in others)]  # fmt: skip
                if options:
                    new.append(rng.choice(options))
                else:
                    counts["shift_impossible"] += 1
                    new.append((s, e, label))
                    continue
            else:
                new.append((s, e, label))
                continue
            counts[what] += 1
        if sorted(new) != sorted(keys):
            changed.add(i)
        tokens = ex.tokens
        spans = [Span(tokens[s].start, tokens[e].end, s, e, label) for s, e, label in sorted(new)]
        out.append(Example(ex.text, tokens, spans, complete=True, input_hash=None))
    return out, changed, counts


def metrics(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision at k (k = positives), AUPRC (average precision), AUROC; higher score = flagged."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    k = int(truth.sum())
    order = np.argsort(-scores, kind="stable")
    return {"p@k": float(truth[order[:k]].mean()), "auprc": float(average_precision_score(truth, scores)),
            "auroc": float(roc_auc_score(truth, scores))}  # fmt: skip


def cleanlab_scores(reviews: list[Review], examples: list[Example]) -> np.ndarray:
    """1 - cleanlab's sentence label quality (worst token's self-confidence), from the models' marginals."""
    from cleanlab.token_classification.rank import get_label_quality_scores

    classes = ["O", *LABELS]
    labels = []
    for ex in examples:
        y = [0] * len(ex)
        for s in ex.accepted:
            y[s.token_start : s.token_end + 1] = [classes.index(s.label)] * (s.token_end - s.token_start + 1)
        labels.append(y)
    probs = [np.asarray(r.type_probs, dtype=np.float64) for r in reviews]
    probs = [p / p.sum(1, keepdims=True) for p in probs]
    sentence, _ = get_label_quality_scores(labels, probs)
    return 1.0 - np.asarray(sentence)


def write_config(path: Path, train: Path, dev: Path, epochs: int, root: Path) -> None:
    import yaml

    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": epochs, "log_every_n_steps": 50,
                    "default_root_dir": str(root), "enable_progress_bar": False},
        "data": {"train": str(train), "dev": str(dev), "labels": LABELS, "scheme": "bio", "batch_size": 32,
                 "eval_batch_size": 256},
        "model": {"encoder": "small", "encoder_options": {"min_count": 1, "word_dim": 64, "hidden": 128},
                  "dropout": 0.3, "lr": 0.003, "warmup": 0.05},
        "early_stopping": {"patience": epochs},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")


def evaluate(name: str, reviews: list[Review], examples: list[Example], truth: np.ndarray,
             store: dict | None = None) -> dict[str, dict]:  # fmt: skip
    """Metrics of every score; ``store`` (if given) gets each score's per-sentence values."""
    columns = {s: np.array([r.scores[s] for r in reviews]) for s in SCORES}
    columns["cleanlab"] = cleanlab_scores(reviews, examples)
    if store is not None:
        store.update({f"{name}:{s}": [round(float(v), 6) for v in x] for s, x in columns.items()})
    return {f"{name}:{s}": metrics(x, truth) for s, x in columns.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/conll2003"), help="CoNLL-2003 folder")
    parser.add_argument("--sentences", type=int, default=1000, help="first N training sentences")
    parser.add_argument("--dev-sentences", type=int, default=300, help="first N dev sentences (early stopping)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--folds", type=int, nargs="*", default=[2, 3])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--scores-out", default=None, help="write every score of every sentence here (JSON)")
    args = parser.parse_args(argv)

    from sparse_ner.data.columns import write_columns
    from sparse_ner.core.export import load
    from sparse_ner.review.folds import out_of_fold, write_examples
    from sparse_ner.training.train import fit

    data = Path(args.data)
    gold = [ex for _, ex in zip(range(args.sentences), read_columns(data / "train.txt", encoding="iob1"))]
    examples, changed, counts = corrupt(gold, args.seed)
    truth = np.array([i in changed for i in range(len(examples))], dtype=float)
    print(f"{len(examples)} sentences, {sum(len(e.accepted) for e in gold)} entities; corrupted: {counts}; "
          f"{len(changed)} sentences changed ({truth.mean():.1%})", flush=True)  # fmt: skip
    results: dict = {"sentences": len(examples), "corruption": counts, "changed": len(changed), "timing_s": {},
                     "epochs": args.epochs}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench_review_") as tmp:
        tmp_path = Path(tmp)
        dev = tmp_path / "dev.txt"
        write_columns([ex for _, ex in zip(range(args.dev_sentences), read_columns(data / "dev.txt"))], dev)
        train = tmp_path / "train.jsonl"
        write_examples(examples, train)
        config = tmp_path / "config.yaml"
        write_config(config, train, dev, args.epochs, tmp_path / "runs")

        cpu: dict[str, float] = {}  # process CPU seconds: robust to other processes on shared cores
        t0, c0 = time.perf_counter(), time.process_time()
        model = fit(config, export_dir=tmp_path / "model").model
        results["timing_s"]["train"] = time.perf_counter() - t0
        cpu["train"] = time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        reviews = score_examples(load(model), examples)
        results["timing_s"]["score"] = time.perf_counter() - t0
        cpu["score"] = time.process_time() - c0
        per_sentence: dict = {}
        rows = evaluate("in-sample", reviews, examples, truth, per_sentence)
        for k in args.folds:
            t0, c0 = time.perf_counter(), time.process_time()
            oof = out_of_fold(examples, config, k, models_dir=tmp_path / f"k{k}", seed=args.seed)
            results["timing_s"][f"oof{k}"] = time.perf_counter() - t0
            cpu[f"oof{k}"] = time.process_time() - c0
            rows.update(evaluate(f"oof{k}", oof, examples, truth, per_sentence))
            print(f"oof{k}: {results['timing_s'][f'oof{k}']:.0f}s", flush=True)
    results["rows"] = rows
    results["cpu_s"] = cpu
    results["threads"] = torch.get_num_threads()
    base, base_cpu = results["timing_s"]["train"], cpu["train"]
    print(f"\none training run: {base:.0f}s wall, {base_cpu:.0f}s CPU; scoring: {results['timing_s']['score']:.1f}s wall")
    for k in args.folds:
        print(f"out-of-fold K={k}: {results['timing_s'][f'oof{k}']:.0f}s wall = {results['timing_s'][f'oof{k}'] / base:.2f}x; "
              f"{cpu[f'oof{k}']:.0f}s CPU = {cpu[f'oof{k}'] / base_cpu:.2f}x")
    print(f"\n| probabilities:score | P@k (k={len(changed)}) | AUPRC | AUROC |\n|---|---:|---:|---:|")
    for name, m in rows.items():
        print(f"| {name} | {m['p@k']:.3f} | {m['auprc']:.3f} | {m['auroc']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf8")
    if args.scores_out:
        Path(args.scores_out).write_text(json.dumps({"truth": truth.tolist(), "scores": per_sentence}), encoding="utf8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
