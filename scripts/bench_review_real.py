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

    OMP_NUM_THREADS=1 python scripts/bench_review_real.py --epochs 14 --seeds 0 1 2 --in-sample \
        --temperatures 1 1.5 3 --json bench_results/review_real.json

``--seeds`` trains (or loads) one model per seed and adds their ensemble; ``--in-sample`` adds a model
trained on train + the original dev annotation; ``--temperatures`` scores the first model at each
temperature. Besides the table it prints, per score, the metrics on the sentences left once the
guideline-only changes are removed (:func:`guideline_only`) and bootstrap intervals against cleanlab.

``--binary`` scores simulated ``ner.teach`` answers from the original dev annotation instead
(:func:`evaluate_binary`), with the cached models of ``--seeds``::

    OMP_NUM_THREADS=1 python scripts/bench_review_real.py --binary --seeds 0 1 2 --json bench_results/review_real_binary.json
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


# the model block of each encoder's shipped config: configs/conll_gold.yaml's small BiLSTM-CRF,
# configs/gpu_transformer.yaml's MiniLM-L6 (all layers fine-tuned)
MODELS = {"small": ROOT / "configs/conll_gold.yaml", "minilm": ROOT / "configs/gpu_transformer.yaml"}


def write_config(path: Path, data: Path, epochs: int, minutes: float, root: Path, seed: int = 0,
                 train: Path | None = None, encoder: str = "small") -> None:  # fmt: skip
    """The model block of the encoder's config (:data:`MODELS`), epochs capped; the checkpoint chosen
    on CoNLL-2003 test."""
    import yaml

    config = {
        "seed_everything": seed,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": epochs, "log_every_n_steps": 50,
                    "default_root_dir": str(root), "enable_progress_bar": False,
                    "max_time": f"00:00:{int(minutes):02d}:00"},
        "data": {"train": str(train or data / "train.txt"), "dev": str(data / "test.txt"), "test": None,
                 "encoding": "iob1", "labels": LABELS, "scheme": "bio", "batch_size": 32,
                 "eval_batch_size": 256},
        "model": yaml.safe_load(MODELS[encoder].read_text(encoding="utf8"))["model"],
        "early_stopping": {"patience": 5},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")


def trained_model(data: Path, cache: Path, epochs: int, minutes: float, seed: int = 0,
                  in_sample: bool = False, encoder: str = "small") -> tuple[Path, dict]:  # fmt: skip
    """The cached model folder of training seed ``seed`` (trained now if absent) and how it was trained.

    ``in_sample``: trained on train + the original dev annotation (the sentences it then scores), the
    way a user reviews their own training data with ``--model``."""
    cache = cache if encoder == "small" else cache / encoder
    cache = cache / "insample" if in_sample else cache if seed == 0 else cache / f"seed{seed}"
    model, info_path = cache / "model", cache / "train.json"
    if (model / "tagger.json").exists() and info_path.exists():
        return model, json.loads(info_path.read_text())
    from sparse_ner.training.train import fit

    cache.mkdir(parents=True, exist_ok=True)
    config = cache / "config.yaml"
    train = None
    if in_sample:  # CoNLL text: only in the git-ignored cache
        train = cache / "train_dev.txt"
        train.write_text((data / "train.txt").read_text() + "\n" + (data / "dev.txt").read_text())
    write_config(config, data, epochs, minutes, cache / "runs", seed, train, encoder)
    t0, c0 = time.perf_counter(), time.process_time()
    result = fit(config, export_dir=model, run_name="conll_train")
    info = {"encoder": encoder, "seed": seed, "in_sample": in_sample, "epochs": epochs, "max_minutes": minutes, "train_wall_s": time.perf_counter() - t0,
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


def candidate_scores(reviews: list) -> dict[str, np.ndarray]:
    """Combinations tried on the way to ``combined`` (see BENCHMARKS.md)."""
    col = {s: np.array([r.scores[s] for r in reviews]) for s in ("loss", "span_odds", "token", "label_token", "worst_span")}
    token_log = -np.log(np.maximum(1 - col["token"], 1e-12))
    return {
        "token_sum": np.array([sum(d for _, d in r.disagreement) for r in reviews]),
        "loss+odds": col["loss"] + col["span_odds"],
        "loss+token_log": col["loss"] + token_log,
        "loss+worst": col["loss"] + col["worst_span"],
        "loss/mean+label_token/mean": col["loss"] / col["loss"].mean() + col["label_token"] / col["label_token"].mean(),
        "rank(loss,odds)": rank_mean(col["loss"], col["span_odds"]),
        "rank(loss,token)": rank_mean(col["loss"], col["token"]),
    }


def _classes(review) -> list[int]:
    classes = ["O", *LABELS]
    cls = [0] * len(review.example)
    for s, e, label in review.accepted:
        cls[s : e + 1] = [classes.index(label)] * (e - s + 1)
    return cls


def rank_mean(*scores: np.ndarray) -> np.ndarray:
    return -np.mean([percentile_ranks(x) for x in scores], axis=0)


def ensemble(runs: list[list]) -> list:
    """One review per example from several models' reviews: scores, token disagreements and type
    probabilities averaged, the relative scores recomputed."""
    from dataclasses import replace

    from sparse_ner.review.score import add_relative_scores

    out = []
    for rs in zip(*runs):
        scores = {k: float(np.mean([r.scores[k] for r in rs])) for k in rs[0].scores}
        dis = [(c, float(np.mean([r.disagreement[t][1] for r in rs]))) for t, (c, _) in enumerate(rs[0].disagreement)]
        probs = np.mean([r.type_probs for r in rs], axis=0)
        out.append(replace(rs[0], scores=scores, disagreement=dis, type_probs=probs))
    return add_relative_scores(out)


def guideline_only(examples: list[Example], clean: list[Example], train: list[Example]) -> np.ndarray:
    """Changed sentences whose every change is a relabelling of a string that CoNLL-2003 train gives the
    original label >= 90% of the time (seen >= 3 times): a guideline change no CoNLL-trained model can
    see (e.g. national teams in sports results, LOC in CoNLL, ORG in CleanCoNLL)."""
    label, total = Counter(), Counter()
    for ex in train:
        for s in ex.accepted:
            w = " ".join(ex.words[s.token_start : s.token_end + 1]).lower()
            label[w, s.label] += 1
            total[w] += 1
    out = []
    for a, b in zip(examples, clean):
        before, after = entity_set(a), entity_set(b)
        ok = before != after and not any(all(x[:2] != y[:2] for y in after) for x in before - after)
        for s, e, lab in after - before:
            old = [x[2] for x in before - after if x[:2] == (s, e)]
            w = " ".join(a.words[s : e + 1]).lower()
            ok = ok and bool(old) and total[w] >= 3 and label[w, old[0]] / total[w] >= 0.9
        out.append(ok)
    return np.array(out)


def bootstrap_diff(x: np.ndarray, y: np.ndarray, truth: np.ndarray, n: int = 300, seed: int = 0) -> dict:
    """95% intervals of AUPRC(x) - AUPRC(y) and AUROC(x) - AUROC(y), sentences resampled."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(seed)
    d_pr, d_roc = [], []
    for _ in range(n):
        i = rng.integers(0, len(truth), len(truth))
        d_pr.append(average_precision_score(truth[i], x[i]) - average_precision_score(truth[i], y[i]))
        d_roc.append(roc_auc_score(truth[i], x[i]) - roc_auc_score(truth[i], y[i]))
    q = lambda d: [float(v) for v in np.quantile(d, [0.025, 0.5, 0.975])]  # noqa: E731
    return {"auprc": q(d_pr), "auroc": q(d_roc)}


def evaluate_real(args: argparse.Namespace, models: list[tuple[Path, dict]]) -> int:
    from sparse_ner.core.export import load
    from sparse_ner.review.score import SCORES, score_examples

    data = Path(args.data)
    original = list(read_columns(data / "dev.txt", "iob1"))
    clean = list(read_columns(args.clean, "bio", sep="\t"))
    pairs = align(original, clean)
    examples = [original[i] for i, _ in pairs]
    cleaned = [clean[j] for _, j in pairs]
    kinds = [change_kinds(entity_set(a), entity_set(b)) if entity_set(a) != entity_set(b) else Counter()
             for a, b in zip(examples, cleaned)]  # fmt: skip
    truth = np.array([bool(c) for c in kinds], dtype=float)
    k = int(truth.sum())
    total = sum(kinds, Counter())
    guide = guideline_only(examples, cleaned, list(read_columns(data / "train.txt", "iob1")))
    keep = ~guide
    print(f"{len(original)} dev sentences, {len(pairs)} matched, {k} changed; changes: {dict(total)}; "
          f"sentences with each kind: { {x: sum(1 for c in kinds if c[x]) for x in KINDS} }; "
          f"guideline-only: {int(guide.sum())}", flush=True)  # fmt: skip
    test = list(read_columns(data / "test.txt", "iob1"))
    results: dict = {"matched": len(pairs), "changed": k, "changes": dict(total), "guideline_only": int(guide.sum()),
                     "models": [info for _, info in models], "rows": {}, "detectable": {}, "kinds": {}, "halves": {},
                     "test_nll": {}, "bootstrap_vs_cleanlab": {}}  # fmt: skip
    half = np.arange(len(examples)) < len(examples) // 2
    per_sentence: dict[str, list[float]] = {}

    def record(name: str, reviews: list) -> None:
        columns = {s: np.array([r.scores[s] for r in reviews]) for s in SCORES}
        columns["cleanlab"] = cleanlab_scores(reviews, examples)
        columns.update(candidate_scores(reviews))
        for score, x in columns.items():
            key = f"{name}:{score}"
            results["rows"][key] = metrics(x, truth)
            results["detectable"][key] = metrics(x[keep], truth[keep])
            results["kinds"][key] = by_kind(x, kinds, k)
            results["halves"][key] = [metrics(x[h], truth[h])["auprc"] for h in (half, ~half)]
            per_sentence[key] = [round(float(v), 6) for v in x]
        for score in ("combined", "label_token", "loss"):
            results["bootstrap_vs_cleanlab"][f"{name}:{score}"] = bootstrap_diff(columns[score], columns["cleanlab"], truth)

    in_sample = [(m, info) for m, info in models if info.get("in_sample")]
    models = [(m, info) for m, info in models if not info.get("in_sample")]
    taggers = [load(model) for model, _ in models]
    for T in args.temperatures:
        t0 = time.perf_counter()
        nll = sum(r.scores["loss"] for r in score_examples(taggers[0], test, temperature=T))
        results["test_nll"][T] = nll / len(test)
        record(f"seed{models[0][1].get('seed', 0)},T={T:g}", score_examples(taggers[0], examples, temperature=T))
        print(f"T={T:g}: test NLL/sentence {nll / len(test):.3f}; {time.perf_counter() - t0:.0f}s", flush=True)
    if len(taggers) > 1:
        runs = [score_examples(t, examples) for t in taggers]
        for (_, info), run in zip(models[1:], runs[1:]):
            record(f"seed{info.get('seed', 0)},T=1", run)
        record(f"ensemble{len(runs)},T=1", ensemble(runs))
    for model, _ in in_sample:
        record("in-sample,T=1", score_examples(load(model), examples))
    print(f"\n| model,T:score | P@{k} | AUPRC | AUROC | AUPRC halves | detectable AUPRC / AUROC | "
          f"recall@{k} label/boundary/missing/spurious |\n|---|---:|---:|---:|---|---|---|")
    for key, m in sorted(results["rows"].items(), key=lambda kv: -kv[1]["auprc"]):
        h, kd, d = results["halves"][key], results["kinds"][key], results["detectable"][key]
        rec = " / ".join(f"{kd[x]['recall@k']:.2f}" for x in KINDS)
        print(f"| {key} | {m['p@k']:.3f} | {m['auprc']:.3f} | {m['auroc']:.3f} | {h[0]:.3f} / {h[1]:.3f} | "
              f"{d['auprc']:.3f} / {d['auroc']:.3f} | {rec} |")
    print("\nvs cleanlab (same model), 95% bootstrap intervals:")
    for key, b in results["bootstrap_vs_cleanlab"].items():
        print(f"  {key}: AUPRC {b['auprc'][1]:+.3f} [{b['auprc'][0]:+.3f}, {b['auprc'][2]:+.3f}]  "
              f"AUROC {b['auroc'][1]:+.3f} [{b['auroc'][0]:+.3f}, {b['auroc'][2]:+.3f}]")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf8")
    if per_sentence:  # indices and scores only, in the git-ignored cache
        (Path(args.cache) / "scores.json").write_text(
            json.dumps({"truth": truth.tolist(), "guideline_only": guide.tolist(), "kinds": [dict(c) for c in kinds],
                        "scores": per_sentence}), encoding="utf8")  # fmt: skip
    return 0


def evaluate_binary(args: argparse.Namespace, models: list[tuple[Path, dict]]) -> int:
    """``--binary``: simulated ``ner.teach`` answers from the ORIGINAL dev annotation, scored per text.

    The answers (``sparse-ner simulate-teach``, seed ``--teach-seed``, written to the git-ignored cache)
    are read with ``read_any(gold=False)`` (merged per text) and scored by ``score_examples``, the path
    ``sparse_ner.review`` takes for binary data. A text is a true mistake when one of its answers
    contradicts CleanCoNLL: an accepted span that is no CleanCoNLL entity with that exact
    (start, end, label), or a rejected span that is one. Texts whose tokens match no CleanCoNLL
    sentence (or duplicate texts whose CleanCoNLL entity sets differ) are left out.
    """
    from sparse_ner.core.export import load
    from sparse_ner.data.read import read_any
    from sparse_ner.data.simulate_teach import simulate_teach_file
    from sparse_ner.review.score import SCORES, score_examples

    data, cache = Path(args.data), Path(args.cache)
    teach = cache / f"teach_dev_seed{args.teach_seed}.jsonl"  # CoNLL text: only in the git-ignored cache
    if not teach.exists():
        simulate_teach_file(data / "dev.txt", teach, encoding="iob1", seed=args.teach_seed)
    original = list(read_columns(data / "dev.txt", "iob1"))
    clean = list(read_columns(args.clean, "bio", sep="\t"))
    pairs = align(original, clean)
    clean_of = {i: entity_set(clean[j]) for i, j in pairs}
    guide = guideline_only([original[i] for i, _ in pairs], [clean[j] for _, j in pairs],
                           list(read_columns(data / "train.txt", "iob1")))  # fmt: skip
    guide_idx = {i for (i, _), g in zip(pairs, guide) if g}
    by_words: dict[tuple, list[int]] = {}
    for i, ex in enumerate(original):
        by_words.setdefault(tuple(ex.words), []).append(i)
    texts = read_any(teach, gold=False, labels=LABELS, name="review")
    examples, truth, keep, where = [], [], [], Counter()
    for ex in texts:
        if not (ex.accepted or ex.rejected):
            where["no answer left"] += 1
            continue
        idx = by_words.get(tuple(ex.words), [])
        sets = [clean_of.get(i) for i in idx]
        if not idx or any(c is None for c in sets) or any(c != sets[0] for c in sets):
            where["unmatched or ambiguous"] += 1
            continue
        acc_bad = any(s.key not in sets[0] for s in ex.accepted)
        rej_bad = any(s.key in sets[0] for s in ex.rejected)
        where["accept contradicts"] += acc_bad
        where["reject contradicts"] += rej_bad
        examples.append(ex)
        truth.append(acc_bad or rej_bad)
        keep.append(idx[0] not in guide_idx)
    truth, keep = np.array(truth, dtype=float), np.array(keep)
    k = int(truth.sum())
    changed = {i for i, c in clean_of.items() if c != entity_set(original[i])}
    answered_changed = {i for ex in examples for i in by_words[tuple(ex.words)]} & changed
    print(f"{len(texts)} texts with answers, {len(examples)} scored, {k} contradict CleanCoNLL; {dict(where)}; "
          f"{len(answered_changed)} of the {len(changed)} changed dev sentences got answers", flush=True)  # fmt: skip
    results: dict = {"teach": str(teach.name), "teach_seed": args.teach_seed, "texts": len(texts), "scored": len(examples),
                     "positives": k, "counts": dict(where), "changed_sentences_answered": len(answered_changed),
                     "guideline_only_positives": int(truth[~keep].sum()), "detectable_scored": int(keep.sum()),
                     "models": [info for _, info in models],
                     "rows": {}, "detectable": {},
                     "not_applicable": {"cleanlab": "needs a label for every token; binary answers fix only the tokens "
                                        "of accepted spans, where cleanlab's self-confidence is the 'token' score"}}  # fmt: skip
    models = [(m, info) for m, info in models if not info.get("in_sample")]
    runs = []
    for model, info in models:
        t0 = time.perf_counter()
        reviews = score_examples(load(model), examples)
        runs.append(reviews)
        for score in SCORES:
            x = np.array([r.scores[score] for r in reviews])
            results["rows"][f"seed{info.get('seed', 0)}:{score}"] = metrics(x, truth)
            results["detectable"][f"seed{info.get('seed', 0)}:{score}"] = metrics(x[keep], truth[keep])
        print(f"seed {info.get('seed', 0)}: scored in {time.perf_counter() - t0:.0f}s", flush=True)
    if len(runs) > 1:
        avg = ensemble(runs)
        for score in SCORES:
            x = np.array([r.scores[score] for r in avg])
            results["rows"][f"ensemble{len(runs)}:{score}"] = metrics(x, truth)
            results["detectable"][f"ensemble{len(runs)}:{score}"] = metrics(x[keep], truth[keep])
    results["bootstrap_combined_vs_loss"] = {}
    named = [(f"seed{info.get('seed', 0)}", run) for (_, info), run in zip(models, runs)]
    for name, run in named + ([(f"ensemble{len(runs)}", ensemble(runs))] if len(runs) > 1 else []):
        x, y = (np.array([r.scores[s] for r in run]) for s in ("combined", "loss"))
        diff = results["bootstrap_combined_vs_loss"][name] = bootstrap_diff(x, y, truth)
        print(f"{name}: combined - loss {diff}", flush=True)
    rng = np.random.default_rng(0)
    results["random"] = metrics(rng.random(len(truth)), truth)
    print(f"{int(truth[~keep].sum())} positives are guideline-only sentences (detectable: the other {int(truth[keep].sum())})")
    print(f"\n| model:score | P@{k} | AUPRC | AUROC | detectable AUPRC / AUROC |\n|---|---:|---:|---:|---|")
    for key, m in sorted(results["rows"].items(), key=lambda kv: -kv[1]["auprc"]):
        d = results["detectable"][key]
        print(f"| {key} | {m['p@k']:.3f} | {m['auprc']:.3f} | {m['auroc']:.3f} | {d['auprc']:.3f} / {d['auroc']:.3f} |")
    print(f"| random | {results['random']['p@k']:.3f} | {results['random']['auprc']:.3f} | {results['random']['auroc']:.3f} | |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/conll2003"), help="CoNLL-2003 folder")
    parser.add_argument("--clean", default=str(ROOT.parent / "shared/data/cleanconll/cleanconll.dev"))
    parser.add_argument("--cache", default=str(ROOT / "bench_results/review_real"), help="model cache folder")
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--minutes", type=float, default=24.0, help="training time cap")
    parser.add_argument("--encoder", choices=sorted(MODELS), default="small",
                        help="the model's encoder (minilm: cached in CACHE/minilm)")
    parser.add_argument("--temperatures", type=float, nargs="*", default=[1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (more than one: ensembles too)")
    parser.add_argument("--in-sample", action="store_true", help="also a model trained on train + dev (scored in-sample)")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--binary", action="store_true", help="score simulated ner.teach answers instead (see evaluate_binary)")
    parser.add_argument("--teach-seed", type=int, default=0, help="--binary: seed of the simulated answers")
    args = parser.parse_args(argv)

    models = [trained_model(Path(args.data), Path(args.cache), args.epochs, args.minutes, seed, encoder=args.encoder)
              for seed in args.seeds]  # fmt: skip
    if args.in_sample:
        models.append(trained_model(Path(args.data), Path(args.cache), args.epochs, args.minutes, 0, in_sample=True,
                                    encoder=args.encoder))  # fmt: skip
    for model, info in models:
        print(f"model: {model} {info}", flush=True)
    if args.train_only:
        return 0
    return evaluate_binary(args, models) if args.binary else evaluate_real(args, models)


if __name__ == "__main__":
    sys.exit(main())
