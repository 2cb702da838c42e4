"""Model selection and the entity ratio without gold: what a user with only a db-out export gets.

    python scripts/bench_eval_split.py --corpus conll --budget 2000 --ratio auto-dev 0.15 --max-epochs 15
    python scripts/bench_eval_split.py --report

Each run trains the small-encoder CRF (the corpus' teach config) on the first ``--budget`` tasks of
the simulated teach answers, holding out ``--split`` of the texts by input hash (``data.eval_split``,
what ``sparse-ner train`` does without ``--data.dev``), for ``--max-epochs`` epochs without early
stopping. After every epoch it records the held-out binary metric (the ``val_*`` that checkpoint
selection uses: F1 over the answered spans, accept recall, reject avoidance), and -- for this
benchmark only -- the gold dev and gold test F1 of the same weights. From one run it reports the
test F1 of the epoch chosen on the binary held-out answers and of the epoch chosen on gold dev: the
cost of selecting without gold.

``--ratio`` values: a number (a hand-set ``model.entity_ratio``), ``auto`` (what ``entity_ratio: auto``
does with binary answers only) or ``auto-dev`` (what it does when a gold dev file is given: the share
of entity tokens in the gold dev annotation). Results are appended to ``--results`` (one JSON line per
run, with every epoch); a (corpus, budget, ratio, split, max_epochs, seed) already there is skipped.

WNUT-17 teach answers are made with ``sparse-ner simulate-teach ../shared/data/wnut17/train.conll
bench_results/wnut17_train_teach.jsonl --encoding bio`` (done by this script when missing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CORPORA = {
    "conll": dict(teach=DATA / "teach/conll2003_train_teach.jsonl", dev=DATA / "conll2003/dev.txt",
                  test=DATA / "conll2003/test.txt", encoding="iob1", config=ROOT / "configs/conll_teach.yaml"),
    "wnut": dict(teach=ROOT / "bench_results/wnut17_train_teach.jsonl", gold_train=DATA / "wnut17/train.conll",
                 dev=DATA / "wnut17/dev.conll", test=DATA / "wnut17/test.conll", encoding="bio",
                 config=ROOT / "configs/conll_teach.yaml"),
}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_one(corpus: str, budget: int | None, ratio: str, split: float, max_epochs: int, seed: int) -> dict:
    import pytorch_lightning as pl
    import yaml

    from sparse_ner.core.evaluate import evaluate_tagger
    from sparse_ner.data.read import read_any
    from sparse_ner.training.datamodule import TaggerDataModule
    from sparse_ner.training.entity_ratio import auto_entity_ratio
    from sparse_ner.training.module import TaggerModule

    c = CORPORA[corpus]
    config = yaml.safe_load(Path(c["config"]).read_text())
    quiet = lambda message: None  # noqa: E731
    dev_gold = read_any(c["dev"], gold=True, column_encoding=c["encoding"], report=quiet)
    test_gold = read_any(c["test"], gold=True, column_encoding=c["encoding"], report=quiet)
    data = TaggerDataModule(str(c["teach"]), eval_split=split, max_tasks=budget, scheme="bio",
                            batch_size=config["data"]["batch_size"], eval_batch_size=256, seed=seed)  # fmt: skip
    data.setup("fit")
    if ratio == "auto-dev":
        value, why = auto_entity_ratio(data.train_examples, dev_gold)
    elif ratio == "auto":
        value, why = auto_entity_ratio(data.train_examples, data.dev_examples)
    else:
        value, why = float(ratio), "hand-set"
    print(f"[{corpus} {budget} {ratio}] {why}", flush=True)
    m = config["model"]
    module = TaggerModule(encoder=m["encoder"], encoder_options=m["encoder_options"], dropout=m["dropout"],
                          entity_ratio=value, ratio_margin=m.get("ratio_margin", 0.05), lr=m["lr"], warmup=m["warmup"])  # fmt: skip

    epochs: list[dict] = []

    class GoldEval(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: TaggerModule) -> None:  # after validation
            row = {"epoch": trainer.current_epoch}
            row.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")})
            tagger = pl_module.tagger
            was_training = tagger.training
            tagger.eval()
            for name, examples in (("dev", dev_gold), ("test", test_gold)):
                result = evaluate_tagger(tagger, examples, batch_size=256)
                row.update({f"{name}_f1": float(result["f1"]), f"{name}_p": float(result["precision"]),
                            f"{name}_r": float(result["recall"])})  # fmt: skip
            tagger.train(was_training)
            epochs.append(row)
            print(json.dumps(row), flush=True)

    pl.seed_everything(seed)
    trainer = pl.Trainer(max_epochs=max_epochs, logger=False, enable_checkpointing=False, callbacks=[GoldEval()],
                         gradient_clip_val=5.0, inference_mode=False, use_distributed_sampler=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    start = time.time()
    trainer.fit(module, datamodule=data)
    by_binary = max(epochs, key=lambda r: r["val_f1"])
    by_gold = max(epochs, key=lambda r: r["dev_f1"])
    return {
        "corpus": corpus, "budget": budget or "all", "ratio": ratio, "ratio_value": round(value, 4), "split": split,
        "max_epochs": max_epochs, "seed": seed, "train_texts": len(data.train_examples),
        "heldout_texts": len(data.dev_examples), "epochs": epochs,
        "select_binary": {"epoch": by_binary["epoch"], "test_f1": by_binary["test_f1"], "val_f1": by_binary["val_f1"]},
        "select_gold_dev": {"epoch": by_gold["epoch"], "test_f1": by_gold["test_f1"], "dev_f1": by_gold["dev_f1"]},
        "train_s": round(time.time() - start), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": cpu_name(), "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
        "date": dt.date.today().isoformat(),
    }  # fmt: skip


def report(results: Path) -> str:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    out = ["| corpus | budget | seed | entity_ratio | value | test F1, epoch chosen on binary held-out | "
           "test F1, epoch chosen on gold dev | difference | best test F1 any epoch | train s |",
           "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        b, g = r["select_binary"], r["select_gold_dev"]
        best = max(e["test_f1"] for e in r["epochs"])
        out.append(f"| {r['corpus']} | {r['budget']} | {r['seed']} | {r['ratio']} | {r['ratio_value']:.3f} | "
                   f"{b['test_f1']:.3f} (ep {b['epoch']}) | {g['test_f1']:.3f} (ep {g['epoch']}) | "
                   f"{b['test_f1'] - g['test_f1']:+.3f} | {best:.3f} | {r['train_s']} |")  # fmt: skip
    # mean over the seeds each (corpus, budget, ratio) was run with
    groups: dict[tuple, dict[str, dict[int, dict]]] = {}
    for r in rows:
        groups.setdefault((r["corpus"], str(r["budget"])), {}).setdefault(r["ratio"], {})[r["seed"]] = r
    out += ["", "| corpus | budget | seeds | entity_ratio | mean test F1 (gold-dev choice) | mean test F1 (binary choice) |",
            "|---|---:|---|---|---:|---:|"]  # fmt: skip
    for (corpus, budget), by_ratio in groups.items():
        for ratio, by_seed in by_ratio.items():
            seeds = sorted(by_seed)
            gold = sum(by_seed[s]["select_gold_dev"]["test_f1"] for s in seeds) / len(seeds)
            binary = sum(by_seed[s]["select_binary"]["test_f1"] for s in seeds) / len(seeds)
            out.append(f"| {corpus} | {budget} | {','.join(map(str, seeds))} | {ratio} | {gold:.3f} | {binary:.3f} |")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="conll", choices=sorted(CORPORA))
    p.add_argument("--budget", nargs="+", default=["2000"], help="first N tasks, or all")
    p.add_argument("--ratio", nargs="+", default=["auto-dev"])
    p.add_argument("--split", type=float, default=0.2)
    p.add_argument("--max-epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", type=Path, default=ROOT / "bench_results/eval_split.jsonl")
    p.add_argument("--report", action="store_true")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a single run in this process
    args = p.parse_args()
    if args.report:
        print(report(args.results))
        return 0
    c = CORPORA[args.corpus]
    if not Path(c["teach"]).exists():
        subprocess.run([sys.executable, "-m", "sparse_ner", "simulate-teach", str(c["gold_train"]), str(c["teach"]),
                        "--encoding", c["encoding"]], check=True)  # fmt: skip
    if args.one:
        budget = None if args.budget[0] == "all" else int(args.budget[0])
        row = run_one(args.corpus, budget, args.ratio[0], args.split, args.max_epochs, args.seed)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with args.results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        return 0
    done = set()
    if args.results.exists():
        for line in args.results.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done.add((r["corpus"], str(r["budget"]), r["ratio"], r["split"], r["max_epochs"], r["seed"]))
    for budget in args.budget:
        for ratio in args.ratio:
            if (args.corpus, budget, ratio, args.split, args.max_epochs, args.seed) in done:
                print(f"skip {args.corpus} {budget} {ratio}: in {args.results}")
                continue
            cmd = [sys.executable, __file__, "--one", "--corpus", args.corpus, "--budget", budget, "--ratio", ratio,
                   "--split", str(args.split), "--max-epochs", str(args.max_epochs), "--seed", str(args.seed),
                   "--results", str(args.results)]  # fmt: skip
            subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
