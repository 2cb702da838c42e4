"""Benchmark: rank CoNLL-2003 dev sentences for review against CleanCoNLL's real corrections.

A tagger is trained on CoNLL-2003 train gold (its checkpoint chosen on CoNLL-2003 *test*, so the dev
sentences stay out of training and of model selection) and scores the ORIGINAL CoNLL-2003 dev
annotation. Each dev sentence is matched to the CleanCoNLL sentence with the identical token sequence,
walking both files in order (3,209 of 3,250 match; the 41 whose tokens or split CleanCoNLL changed are
left out); the truth is the sentences whose entity set differs (390). For every review score
(:data:`sparse_ner.review.score.SCORES`), cleanlab's ``get_label_quality_scores`` on the same token
probabilities and per-example F1 (the ``f1`` score, Prodigy's community recipe), we report precision at
k (k = 390), AUPRC (average precision) and AUROC, and where each score ranks each kind of change
(label, boundary, missing entity, spurious entity).

The model is cached in ``--cache`` (default ``bench_results/review_real/``, git-ignored) so reruns do
not retrain. CoNLL-2003 and CleanCoNLL are research-only: they are read from ../shared/data and
nothing of their text is written into the repository (the per-sentence output holds indices and
scores only). Run from the repository root::

    OMP_NUM_THREADS=1 python scripts/bench_review_real.py --epochs 12 --json bench_results/review_real.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_review import cleanlab_scores, metrics  # noqa: E402

from sparse_ner.data.columns import read_columns  # noqa: E402
from sparse_ner.data.example import Example  # noqa: E402

LABELS = ["LOC", "MISC", "ORG", "PER"]
KINDS = ("label", "boundary", "missing", "spurious")


def align(original: list[Example], clean: list[Example], window: int = 20) -> list[tuple[int, int]]:
    """Pairs (i, j) of sentences with identical token sequences, walking both lists in order."""
    pairs, j = [], 0
    for i, ex in enumerate(original):
        words = ex.words
        for jj in range(j, min(j + window, len(clean))):
            if clean[jj].words == words:
                pairs.append((i, jj))
                j = jj + 1
                break
    return pairs


def entity_set(ex: Example) -> set[tuple[int, int, str]]:
    return {s.key for s in ex.accepted}


def change_kinds(before: set, after: set) -> Counter:
    """What turns the entity set ``before`` into ``after``, per changed entity.

    ``label``: the same tokens with another label; ``boundary``: an overlapping span with other
    boundaries; ``missing``: an entity of ``after`` that overlaps nothing of ``before``; ``spurious``:
    an entity of ``before`` that overlaps nothing of ``after``.
    """
    kinds: Counter = Counter()
    gone, new = before - after, after - before
    for s, e, label in new:
        same = [b for b in gone if b[:2] == (s, e)]
        overlap = [b for b in before if b[0] <= e and s <= b[1]]
        kinds["label" if same else "boundary" if overlap else "missing"] += 1
    for s, e, label in gone:
        if not any(a[0] <= e and s <= a[1] for a in after):
            kinds["spurious"] += 1
    return kinds


def write_config(path: Path, data: Path, epochs: int, minutes: float, root: Path) -> None:
    """configs/conll_gold.yaml's model, epochs capped; the checkpoint chosen on CoNLL-2003 test."""
    import yaml

    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": epochs, "log_every_n_steps": 50,
                    "default_root_dir": str(root), "enable_progress_bar": False,
                    "max_time": f"00:00:{int(minutes):02d}:00"},
        "data": {"train": str(data / "train.txt"), "dev": str(data / "test.txt"), "test": None,
                 "encoding": "iob1", "labels": LABELS, "scheme": "bio", "batch_size": 32,
                 "eval_batch_size": 256},
        "model": {"encoder": "small", "encoder_options": {"min_count": 1, "word_dim": 100, "hidden": 200},
                  "dropout": 0.3, "lr": 0.002, "warmup": 0.05},
        "early_stopping": {"patience": 5},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")


def trained_model(data: Path, cache: Path, epochs: int, minutes: float) -> tuple[Path, dict]:
    """The cached model folder (trained now if absent) and how it was trained."""
    model, info_path = cache / "model", cache / "train.json"
    if (model / "tagger.json").exists() and info_path.exists():
        return model, json.loads(info_path.read_text())
    from sparse_ner.training.train import fit

    cache.mkdir(parents=True, exist_ok=True)
    config = cache / "config.yaml"
    write_config(config, data, epochs, minutes, cache / "runs")
    t0, c0 = time.perf_counter(), time.process_time()
    result = fit(config, export_dir=model, run_name="conll_train")
    info = {"epochs": epochs, "max_minutes": minutes, "train_wall_s": time.perf_counter() - t0,
            "train_cpu_s": time.process_time() - c0, "result": repr(result)}  # fmt: skip
    info_path.write_text(json.dumps(info, indent=2), encoding="utf8")
    return model, info


def percentile_ranks(scores: np.ndarray) -> np.ndarray:
    """0 = ranked first, 1 = ranked last (ties share their mean rank)."""
    from scipy.stats import rankdata

    return (len(scores) - rankdata(scores)) / max(1, len(scores) - 1)


def by_kind(scores: np.ndarray, kinds: list[Counter], k: int) -> dict[str, dict[str, float]]:
    """For the positives with each kind of change: recall in the top k and their median percentile rank."""
    ranks = percentile_ranks(scores)
    top = ranks <= np.sort(ranks)[k - 1]
    out = {}
    for kind in KINDS:
        idx = [i for i, c in enumerate(kinds) if c and c[kind]]
        out[kind] = {"n": len(idx), "recall@k": float(top[idx].mean()), "median_rank": float(np.median(ranks[idx]))}
    return out


def candidate_scores(reviews: list, label_mean: dict | None = None) -> dict[str, np.ndarray]:
    """Scores under test (see BENCHMARKS.md), from the reviews' fields; ``label_mean``: per annotated class,
    the mean token disagreement ``1 - P(annotated class)`` over the data (per-label normalization)."""
    out: dict[str, list[float]] = {}
    if label_mean is None:
        sums, counts = Counter(), Counter()
        for r in reviews:
            cls = _classes(r)
            for t, c in enumerate(cls):
                sums[c] += 1 - float(r.type_probs[t, c])
                counts[c] += 1
        label_mean = {c: sums[c] / counts[c] for c in counts}
    for r in reviews:
        cls = _classes(r)
        conf = np.array([float(r.type_probs[t, c]) for t, c in enumerate(cls)])
        dis = 1 - conf
        norm = np.array([dis[t] / label_mean[c] for t, c in enumerate(cls)])
        loss, odds = r.scores["loss"], r.scores["span_odds"]
        add = {
            "token_sum": float(dis.sum()),
            "token_norm": float(norm.max(initial=0.0)),
            "token_log": float(-np.log(max(conf.min(initial=1.0), 1e-12))),
            "loss+odds": loss + odds,
            "loss+token_log": loss + float(-np.log(max(conf.min(initial=1.0), 1e-12))),
            "loss+worst": loss + r.scores["worst_span"],
            "odds+token": odds + float(-np.log(max(conf.min(initial=1.0), 1e-12))),
        }
        for key, v in add.items():
            out.setdefault(key, []).append(v)
    return {k: np.array(v) for k, v in out.items()}


def _classes(review) -> list[int]:
    classes = ["O", *LABELS]
    cls = [0] * len(review.example)
    for s, e, label in review.accepted:
        cls[s : e + 1] = [classes.index(label)] * (e - s + 1)
    return cls


def rank_mean(*scores: np.ndarray) -> np.ndarray:
    return -np.mean([percentile_ranks(x) for x in scores], axis=0)


def evaluate_real(args: argparse.Namespace, model: Path, info: dict) -> int:
    from sparse_ner.core.export import load
    from sparse_ner.review.score import SCORES, score_examples

    data = Path(args.data)
    original = list(read_columns(data / "dev.txt", "iob1"))
    clean = list(read_columns(args.clean, "bio", sep="\t"))
    pairs = align(original, clean)
    examples = [original[i] for i, _ in pairs]
    kinds = [change_kinds(entity_set(original[i]), entity_set(clean[j])) if entity_set(original[i]) != entity_set(clean[j])
             else Counter() for i, j in pairs]  # fmt: skip
    truth = np.array([bool(c) for c in kinds], dtype=float)
    k = int(truth.sum())
    total = sum(kinds, Counter())
    print(f"{len(original)} dev sentences, {len(pairs)} matched, {k} changed; changes: {dict(total)}; "
          f"sentences with each kind: { {x: sum(1 for c in kinds if c[x]) for x in KINDS} }", flush=True)
    tagger = load(model)
    test = list(read_columns(data / "test.txt", "iob1"))
    results: dict = {"matched": len(pairs), "changed": k, "changes": dict(total), "train": info, "rows": {},
                     "kinds": {}, "halves": {}, "test_nll": {}}  # fmt: skip
    half = np.arange(len(examples)) < len(examples) // 2
    per_sentence: dict[str, list[float]] = {}
    for T in args.temperatures:
        t0 = time.perf_counter()
        nll = sum(r.scores["loss"] for r in score_examples(tagger, test, temperature=T))
        results["test_nll"][T] = nll / len(test)
        reviews = score_examples(tagger, examples, temperature=T)
        columns = {s: np.array([r.scores[s] for r in reviews]) for s in SCORES}
        columns["cleanlab"] = cleanlab_scores(reviews, examples)
        columns.update(candidate_scores(reviews))
        columns["rank(loss,odds)"] = rank_mean(columns["loss"], columns["span_odds"])
        columns["rank(loss,token)"] = rank_mean(columns["loss"], columns["token"])
        columns["rank(token,odds)"] = rank_mean(columns["token"], columns["span_odds"])
        for name, x in columns.items():
            key = f"T={T:g}:{name}"
            results["rows"][key] = metrics(x, truth)
            results["kinds"][key] = by_kind(x, kinds, k)
            results["halves"][key] = [metrics(x[h], truth[h])["auprc"] for h in (half, ~half)]
            per_sentence[key] = [round(float(v), 6) for v in x]
        print(f"T={T:g}: test NLL/sentence {nll / len(test):.3f}; {time.perf_counter() - t0:.0f}s", flush=True)
    print(f"\n| T:score | P@{k} | AUPRC | AUROC | AUPRC halves | recall@k label/boundary/missing/spurious |")
    print("|---|---:|---:|---:|---|---|")
    for key, m in sorted(results["rows"].items(), key=lambda kv: -kv[1]["auprc"]):
        h, kd = results["halves"][key], results["kinds"][key]
        rec = " / ".join(f"{kd[x]['recall@k']:.2f}" for x in KINDS)
        print(f"| {key} | {m['p@k']:.3f} | {m['auprc']:.3f} | {m['auroc']:.3f} | {h[0]:.3f} / {h[1]:.3f} | {rec} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf8")
    if per_sentence:  # indices and scores only, in the git-ignored cache
        (Path(args.cache) / "scores.json").write_text(
            json.dumps({"truth": truth.tolist(), "kinds": [dict(c) for c in kinds], "scores": per_sentence}),
            encoding="utf8")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/conll2003"), help="CoNLL-2003 folder")
    parser.add_argument("--clean", default=str(ROOT.parent / "shared/data/cleanconll/cleanconll.dev"))
    parser.add_argument("--cache", default=str(ROOT / "bench_results/review_real"), help="model cache folder")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--minutes", type=float, default=24.0, help="training time cap")
    parser.add_argument("--temperatures", type=float, nargs="*", default=[1.0])
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)

    model, info = trained_model(Path(args.data), Path(args.cache), args.epochs, args.minutes)
    print(f"model: {model} {info}", flush=True)
    if args.train_only:
        return 0
    return evaluate_real(args, model, info)


if __name__ == "__main__":
    sys.exit(main())
