"""The binary-annotation benchmark: how much each method learns from the same ner.teach answers.

    python scripts/bench_binary.py [--corpus conll] [--budget 2000 all] [--rows crf-small crf-small-gold]
                                   [--results bench_results/binary.jsonl] [--max-epochs 20]

For each corpus, budget N (the first N tasks of the simulated teach file) and row, trains one model and
scores it on the gold test split (entity-level micro F1, exact match), with the gold dev split for model
selection. Rows:

- ``crf-small``, ``softmax-small``, ``crf-minilm``: ours (CRF or softmax head; small encoder or MiniLM-L6);
- ``crf-small-eer-tight``: ours with a tighter entity-ratio penalty (margin 0.02, weight 3);
- ``crf-small-factored``, ``crf-small-reject-prior``: ours with the factored emission head, or with
  ``reject_prior 0.5`` (a rejected span is taken as likelier no entity than another label);
- ``crf-minilm-shape`` (+ ``-gold``): MiniLM-L6 with a 16-dim capitalization-shape embedding per word;
- ``crf-small-no-rejects``, ``crf-small-no-eer``, ``crf-small-as-o``: ablations (rejected spans dropped;
  no expected-entity-ratio penalty; unannotated tokens taken as ``O``); ``crf-minilm-no-rejects``: MiniLM-L6
  on the accepted spans only, the data of the method peers (``scripts/bench_peers.py``);
- ``spacy-binary``, ``spacy-as-o``: the peer, spaCy's NER as Prodigy trains it from binary answers, and
  the naive variant (``scripts/spacy_peer.py``);
- ``crf-small-gold``, ``crf-minilm-gold``, ``spacy-gold``: ceilings, the same models on the complete gold annotation of the same
  sentences (the sentences that the first N tasks ask about).

Each row runs in its own process (wall time and peak RSS are that process's). Results are appended to
``--results`` as JSON lines; a (corpus, budget, row, max_epochs) already there is not recomputed, so the
benchmark runs piece by piece and resumes. ``--report`` prints the Markdown table with the recovery ratio
(F1 from binary answers / F1 of the same model on gold annotation of the same sentences) and writes the
learning-curve PNG next to the results file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import srsly

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

CORPORA = {
    "conll": dict(teach=DATA / "teach/conll2003_train_teach.jsonl", train=DATA / "conll2003/train.txt",
                  dev=DATA / "conll2003/dev.txt", test=DATA / "conll2003/test.txt", encoding="iob1",
                  labels=["LOC", "MISC", "ORG", "PER"], lang="en", config="configs/conll_teach.yaml"),
    "resume": dict(teach=DATA / "teach/resume_ner_train_teach.jsonl", train=DATA / "resume_ner/train.char.bmes",
                   dev=DATA / "resume_ner/dev.char.bmes", test=DATA / "resume_ner/test.char.bmes", encoding="bmes",
                   labels=["CONT", "EDU", "LOC", "NAME", "ORG", "PRO", "RACE", "TITLE"], lang="zh",
                   config="configs/resume_teach.yaml"),
}

# row -> (kind, overrides for sparse_ner.train, or spaCy mode)
ROWS: dict[str, tuple[str, list[str]]] = {
    "crf-small": ("ours", []),
    "softmax-small": ("ours", ["--model.transitions", "false"]),
    "crf-minilm": ("ours", ["--model.encoder", "minilm", "--model.encoder_options", "{}", "--model.lr", "5e-4",
                            "--model.encoder_lr", "5e-5"]),
    "crf-small-factored": ("ours", ["--model.factored", "true"]),
    "crf-small-reject-prior": ("ours", ["--model.reject_prior", "0.5"]),
    "crf-small-reject-prior-0.8": ("ours", ["--model.reject_prior", "0.8"]),
    "crf-small-eer-tight": ("ours", ["--model.ratio_margin", "0.02", "--model.ratio_weight", "3"]),
    "crf-small-no-rejects": ("ours", ["--data.use_rejects", "false"]),
    "crf-small-no-eer": ("ours", ["--model.entity_ratio", "null"]),
    "crf-small-as-o": ("ours", ["--data.complete", "true", "--model.entity_ratio", "null"]),
    "crf-small-gold": ("ours-gold", ["--model.entity_ratio", "null"]),
    "crf-minilm-shape": ("ours", ["--model.encoder", "minilm", "--model.encoder_options", '{"shape_dim": 16}',
                                  "--model.lr", "5e-4", "--model.encoder_lr", "5e-5"]),
    "crf-minilm-shape-gold": ("ours-gold", ["--model.entity_ratio", "null", "--model.encoder", "minilm",
                                            "--model.encoder_options", '{"shape_dim": 16}', "--model.lr", "5e-4",
                                            "--model.encoder_lr", "5e-5"]),
    "crf-minilm-reject-prior": ("ours", ["--model.encoder", "minilm", "--model.encoder_options", "{}",
                                         "--model.lr", "5e-4", "--model.encoder_lr", "5e-5", "--model.reject_prior", "0.5"]),
    "crf-minilm-no-rejects": ("ours", ["--model.encoder", "minilm", "--model.encoder_options", "{}", "--model.lr", "5e-4",
                                       "--model.encoder_lr", "5e-5", "--data.use_rejects", "false"]),
    "crf-minilm-gold": ("ours-gold", ["--model.entity_ratio", "null", "--model.encoder", "minilm",
                                      "--model.encoder_options", "{}", "--model.lr", "5e-4", "--model.encoder_lr", "5e-5"]),
    "spacy-binary": ("spacy", ["binary"]),
    "spacy-as-o": ("spacy", ["as_o"]),
    "spacy-gold": ("spacy-gold", ["gold"]),
}
CEILING = {"ours": "crf-small-gold", "minilm": "crf-minilm-gold", "spacy": "spacy-gold"}


def gold_subset(corpus: dict, budget: int | None, workdir: Path) -> Path:
    """Complete gold annotation (db-out ``ner_manual``) of the sentences the first N tasks ask about.

    Written under ``workdir`` (outside the repository: CoNLL-2003 is research-only)."""
    from sparse_ner.data.columns import read_columns
    from sparse_ner.data.prodigy import examples_to_tasks

    out = workdir / f"{Path(corpus['teach']).stem}_gold_{budget or 'all'}.jsonl"
    if out.exists():
        return out
    records = itertools.islice(srsly.read_jsonl(corpus["teach"]), budget)
    wanted = sorted({r["meta"]["sentence"] for r in records})
    gold = list(read_columns(corpus["train"], encoding=corpus["encoding"]))
    examples = [gold[i] for i in wanted]
    out.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_jsonl(out, examples_to_tasks(examples))
    return out


def run_row(corpus_name: str, budget: int | None, row: str, args) -> dict:
    corpus = CORPORA[corpus_name]
    kind, extra = ROWS[row]
    tag = f"{corpus_name}_{budget or 'all'}_{row}"
    workdir = Path(args.workdir)
    out_json = workdir / f"{tag}.json"
    if kind.startswith("spacy"):
        train = gold_subset(corpus, budget, workdir) if kind == "spacy-gold" else corpus["teach"]
        cmd = [sys.executable, str(ROOT / "scripts/spacy_peer.py"), "--train", str(train), "--dev", str(corpus["dev"]),
               "--test", str(corpus["test"]), "--encoding", corpus["encoding"], "--mode", extra[0], "--labels",
               *corpus["labels"], "--lang", corpus["lang"], "--max-epochs", str(args.max_epochs), "--out", str(out_json)]
        if kind == "spacy" and budget:
            cmd += ["--max-tasks", str(budget)]
    else:
        export = workdir / tag / "model"
        cmd = [sys.executable, "-m", "sparse_ner.train", "--config", str(ROOT / corpus["config"]),
               "--trainer.max_epochs", str(args.max_epochs), "--trainer.enable_progress_bar", "false",
               "--trainer.default_root_dir", str(workdir / "runs"), "--run_name", tag, "--export_dir", str(export),
               "--data.test", "null", *extra]
        if kind == "ours-gold":
            cmd += ["--data.train", str(gold_subset(corpus, budget, workdir)), "--data.max_tasks", "null"]
        elif budget:
            cmd += ["--data.max_tasks", str(budget)]
    wrapped = ["/usr/bin/time", "-f", "peak_rss_kb=%M"] + cmd
    print(f"\n=== {tag}\n$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    proc = subprocess.run(wrapped, cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    log = workdir / f"{tag}.log"
    log.write_text(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{tag} failed (exit {proc.returncode}); see {log}\n{proc.stderr[-3000:]}")
    rss = [ln for ln in proc.stderr.splitlines() if ln.startswith("peak_rss_kb=")]
    peak_mb = int(rss[-1].split("=")[1]) / 1024 if rss else float("nan")
    if kind.startswith("spacy"):
        result = json.loads(out_json.read_text())
    else:
        from sparse_ner.core.evaluate import evaluate

        result = evaluate(export, corpus["test"], encoding=corpus["encoding"])
    return {"corpus": corpus_name, "budget": budget or "all", "row": row, "max_epochs": args.max_epochs,
            "f1": result["f1"], "precision": result["precision"], "recall": result["recall"],
            "train_seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb, 1),
            "threads": args.threads, "command": " ".join(cmd), "machine": f"{platform.machine()} {platform.node()}",
            "date": dt.date.today().isoformat()}


def load_results(path: Path) -> list[dict]:
    return list(srsly.read_jsonl(path)) if path.exists() else []


def report(results: list[dict], png: Path | None) -> str:
    gold = {(r["corpus"], r["budget"], r["row"]): r["f1"] for r in results}
    lines = ["| corpus | budget | row | F1 | P | R | recovery | F1 - spaCy binary | epochs | train s | peak RSS MB |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = list(ROWS)
    size = lambda b: float("inf") if b == "all" else int(b)  # noqa: E731
    for r in sorted(results, key=lambda r: (r["corpus"], size(r["budget"]), order.index(r["row"]))):
        family = "spacy" if r["row"].startswith("spacy") else "minilm" if "minilm" in r["row"] else "ours"
        own = gold.get((r["corpus"], r["budget"], f"{r['row']}-gold"))  # e.g. crf-minilm-shape-gold
        ceiling = own or gold.get((r["corpus"], r["budget"], CEILING[family]))
        rec = f"{r['f1'] / ceiling:.2f}" if ceiling and not r["row"].endswith("gold") else ""
        peer = gold.get((r["corpus"], r["budget"], "spacy-binary"))
        delta = f"{r['f1'] - peer:+.3f}" if peer is not None and family != "spacy" and not r["row"].endswith("gold") else ""
        lines.append(f"| {r['corpus']} | {r['budget']} | {r['row']} | {r['f1']:.3f} | {r['precision']:.3f} | "
                     f"{r['recall']:.3f} | {rec} | {delta} | {r['max_epochs']} | {r['train_seconds']:.0f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    if png is not None and results:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        corpora = sorted({r["corpus"] for r in results})
        # top: the comparison the benchmark is for (ours vs spaCy as Prodigy trains it, each with its
        # gold ceiling dashed in the same colour); bottom: the ablations, one distinct colour each
        main = {"crf-small": "tab:blue", "crf-small-reject-prior": "tab:green", "crf-minilm": "tab:purple",
                "spacy-binary": "tab:red"}  # fmt: skip
        ceilings = {"crf-small-gold": "tab:blue", "crf-minilm-gold": "tab:purple", "spacy-gold": "tab:red"}
        fig, axes = plt.subplots(2, len(corpora), figsize=(7 * len(corpora), 9), squeeze=False)
        for col, corpus in enumerate(corpora):
            sizes: dict[str, list] = {}
            for r in results:
                if r["corpus"] == corpus:
                    n = r["budget"] if r["budget"] != "all" else 18540 if corpus == "conll" else 5170
                    sizes.setdefault(r["row"], []).append((n, r["f1"]))
            others = [row for row in sorted(sizes, key=order.index) if row not in main and row not in ceilings]
            palette = plt.get_cmap("tab20").colors
            for row in sorted(sizes, key=order.index):
                pts = sorted(sizes[row])
                if row in main or row in ceilings:
                    ax, color = axes[0][col], main.get(row) or ceilings[row]
                    style, label = ("--", f"{row} (ceiling)") if row in ceilings else ("-", row)
                else:
                    ax, color = axes[1][col], palette[others.index(row) % len(palette)]
                    style, label = ("--" if row.endswith("gold") else "-"), row
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, marker="o", label=label)
            for row_i, title in enumerate(("binary answers vs spaCy binary (dashed: gold ceilings)", "ablations and variants")):
                ax = axes[row_i][col]
                if row_i == 1 and not others:
                    ax.axis("off")
                    continue
                ax.set_xscale("log")
                ax.set_xlabel("ner.teach tasks (first N)")
                ax.set_ylabel("test entity F1")
                ax.set_title(f"{corpus}: {title}")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        fig.savefig(png, dpi=120)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", choices=sorted(CORPORA), default="conll")
    ap.add_argument("--budget", nargs="+", default=["1000", "2000", "6000", "all"])
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--max-epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1,
                    help="OMP/MKL threads of each run (1: robust when the machine is shared; how much "
                         "more threads cost under competing processes: see BENCHMARKS.md)")
    ap.add_argument("--results", default=str(ROOT / "bench_results/binary.jsonl"))
    ap.add_argument("--workdir", default="/tmp/sparse_ner_bench")
    ap.add_argument("--report", action="store_true", help="only print the table and write the PNG")
    args = ap.parse_args(argv)
    results_path = Path(args.results)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    if not args.report:
        if not CORPORA[args.corpus]["teach"].exists():
            print(f"no data at {DATA}: the benchmark needs ../shared/data", file=sys.stderr)
            return 2
        for b in args.budget:
            budget = None if b == "all" else int(b)
            for row in args.rows:
                done = {(r["corpus"], str(r["budget"]), r["row"], r["max_epochs"]) for r in load_results(results_path)}
                if (args.corpus, str(budget or "all"), row, args.max_epochs) in done:
                    print(f"--- {args.corpus} {b} {row}: already in {results_path}")
                    continue
                result = run_row(args.corpus, budget, row, args)
                print(json.dumps({k: result[k] for k in ("row", "budget", "f1", "precision", "recall",
                                                         "train_seconds")}), flush=True)
                with results_path.open("a") as f:
                    f.write(json.dumps(result) + "\n")
    print(report(load_results(results_path), results_path.with_suffix(".png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
