"""The binary-annotation benchmark: how much each method learns from the same ner.teach answers.

    python scripts/bench_binary.py [--corpus conll] [--budget 2000 all] [--rows crf-small crf-small-gold]
                                   [--results bench_results/binary.jsonl] [--max-epochs 20]

For each corpus, budget N (the first N tasks of the simulated teach file, or of ``--teach``) and row, trains one model and
scores it on the gold test split (entity-level micro F1, exact match), with the gold dev split for model
selection. Rows:

- ``crf-small``, ``softmax-small``, ``crf-minilm``: ours (CRF or softmax head; small encoder or MiniLM-L6);
- ``crf-small-eer-tight``: ours with a tighter entity-ratio penalty (margin 0.02, weight 3);
- ``crf-small-factored``, ``crf-small-reject-prior``: ours with the factored emission head, or with
  ``reject_prior 0.5`` (a rejected span is taken as likelier no entity than another label);
- ``crf-minilm-shape`` (+ ``-gold``, ``-no-rejects``): MiniLM-L6 with a 16-dim capitalization-shape embedding
  per word; ``crf-minilm-shape-looplr`` (+ ``-gold``, ``-no-rejects``): the same at the annotation loop's learning
  rates and dropout; ``crf-minilm-shape-looplr-eer-tight`` (+ ``-w10``): that with the entity-ratio margin 0.02
  (weight 1, or 10); ``crf-minilm-shape-looplr-ema`` (+ ``-gold``): that with Lightning's ``EMAWeightAveraging``
  (decay 0.95 per step; validation, checkpoints and the exported model use the average);
- ``crf-small-no-rejects``, ``crf-small-no-eer``, ``crf-small-as-o``: ablations (rejected spans dropped;
  no expected-entity-ratio penalty; unannotated tokens taken as ``O``); ``crf-minilm-no-rejects``: MiniLM-L6
  on the accepted spans only, the data of the method peers (``scripts/bench_peers.py``);
- ``spacy-binary``, ``spacy-as-o``: the peer, spaCy's NER as Prodigy trains it from binary answers, and
  the naive variant (``scripts/spacy_peer.py``);
- ``ROW-taught`` (``crf-small-taught``, ``crf-minilm-shape-looplr-taught``, ``crf-minilm-shape-looplr-no-rejects-taught``): ROW trained a second time with ROW's
  model (from the same ``--workdir``, trained first) as its teacher (``--data.teacher``: the first model's
  posteriors weight the taggings consistent with the answers);
- ``ROW-unlabeled`` (``crf-minilm-shape-looplr-unlabeled``, ``crf-minilm-shape-looplr-gold-unlabeled``): ROW-taught
  plus ``--unlabeled`` N (default 2,000) texts nobody answered (``--data.unlabeled``: the texts of the answers file
  after the first N tasks', which a real annotator's source holds too), trained on through the teacher's posteriors;
  the ``-gold`` one is the ceiling given the same texts;
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

# the MiniLM-L6 model of the MiniLM rows (head lr 5e-4, encoder 5e-5), without and with the shape embedding
MINILM = ["--model.encoder", "minilm", "--model.encoder_options", "{}", "--model.lr", "5e-4", "--model.encoder_lr", "5e-5"]
MINILM_SHAPE = ["--model.encoder", "minilm", "--model.encoder_options", '{"shape_dim": 16}', "--model.lr", "5e-4",
                "--model.encoder_lr", "5e-5"]  # fmt: skip
# the same with the loop's learning rates and dropout (head 2e-3, encoder 1e-4, dropout 0.1: sparse_ner.loop.defaults
# and configs/simulate_conll_minilm.yaml), which learned more from the same answers than the rows above (BENCHMARKS.md)
MINILM_SHAPE_LOOP = ["--model.encoder", "minilm", "--model.encoder_options", '{"shape_dim": 16}', "--model.lr", "2e-3",
                     "--model.encoder_lr", "1e-4", "--model.dropout", "0.1"]  # fmt: skip
NO_RATIO, NO_REJECTS = ["--model.entity_ratio", "null"], ["--data.use_rejects", "false"]
# Lightning's EMA of the weights (decay 0.95 per step: about the last 20 steps, an epoch of 1,000 tasks at batch 32)
EMA = ["--trainer.callbacks+=pytorch_lightning.callbacks.EMAWeightAveraging", "--trainer.callbacks.decay", "0.95"]

# row -> (kind, overrides for sparse_ner.train, or spaCy mode)
ROWS: dict[str, tuple[str, list[str]]] = {
    "crf-small": ("ours", []),
    "softmax-small": ("ours", ["--model.transitions", "false"]),
    "crf-minilm": ("ours", MINILM),
    "crf-small-factored": ("ours", ["--model.factored", "true"]),
    "crf-small-reject-prior": ("ours", ["--model.reject_prior", "0.5"]),
    "crf-small-reject-prior-0.8": ("ours", ["--model.reject_prior", "0.8"]),
    "crf-small-eer-tight": ("ours", ["--model.ratio_margin", "0.02", "--model.ratio_weight", "3"]),
    "crf-small-no-rejects": ("ours", NO_REJECTS),
    "crf-small-no-eer": ("ours", NO_RATIO),
    "crf-small-as-o": ("ours", ["--data.complete", "true", *NO_RATIO]),
    "crf-small-gold": ("ours-gold", NO_RATIO),
    "crf-minilm-shape": ("ours", MINILM_SHAPE),
    "crf-minilm-shape-no-rejects": ("ours", [*MINILM_SHAPE, *NO_REJECTS]),
    "crf-minilm-shape-gold": ("ours-gold", [*NO_RATIO, *MINILM_SHAPE]),
    "crf-minilm-shape-looplr": ("ours", MINILM_SHAPE_LOOP),
    "crf-minilm-shape-looplr-gold": ("ours-gold", [*NO_RATIO, *MINILM_SHAPE_LOOP]),
    "crf-minilm-shape-looplr-no-rejects": ("ours", [*MINILM_SHAPE_LOOP, *NO_REJECTS]),
    "crf-minilm-shape-looplr-eer-tight": ("ours", [*MINILM_SHAPE_LOOP, "--model.ratio_margin", "0.02"]),
    "crf-minilm-shape-looplr-eer-tight-w10": ("ours", [*MINILM_SHAPE_LOOP, "--model.ratio_margin", "0.02",
                                                       "--model.ratio_weight", "10"]),
    "crf-minilm-shape-looplr-reject-prior": ("ours", [*MINILM_SHAPE_LOOP, "--model.reject_prior", "0.5"]),
    "crf-minilm-shape-looplr-ema": ("ours", [*MINILM_SHAPE_LOOP, *EMA]),
    "crf-minilm-shape-looplr-ema-gold": ("ours-gold", [*NO_RATIO, *MINILM_SHAPE_LOOP, *EMA]),
    "crf-minilm-reject-prior": ("ours", [*MINILM, "--model.reject_prior", "0.5"]),
    "crf-minilm-no-rejects": ("ours", [*MINILM, *NO_REJECTS]),
    "crf-minilm-gold": ("ours-gold", [*NO_RATIO, *MINILM]),
    "crf-small-taught": ("ours", []),  # + --data.teacher: the crf-small model of the same budget (row_command)
    "crf-minilm-shape-looplr-taught": ("ours", MINILM_SHAPE_LOOP),
    "crf-minilm-shape-looplr-no-rejects-taught": ("ours", [*MINILM_SHAPE_LOOP, *NO_REJECTS]),
    "crf-minilm-shape-looplr-unlabeled": ("ours", MINILM_SHAPE_LOOP),  # + --data.teacher and --data.unlabeled
    "crf-minilm-shape-looplr-gold-unlabeled": ("ours-gold", [*NO_RATIO, *MINILM_SHAPE_LOOP]),
    "spacy-binary": ("spacy", ["binary"]),
    "spacy-as-o": ("spacy", ["as_o"]),
    "spacy-gold": ("spacy-gold", ["gold"]),
}
CEILING = {"ours": "crf-small-gold", "minilm": "crf-minilm-gold", "spacy": "spacy-gold"}


def gold_subset(corpus: dict, budget: int | None, workdir: Path, name: str = "") -> Path:
    """Complete gold annotation (db-out ``ner_manual``) of the sentences the first N tasks ask about.

    Written under ``workdir`` (outside the repository: CoNLL-2003 is research-only)."""
    from sparse_ner.data.columns import read_columns
    from sparse_ner.data.prodigy import examples_to_tasks

    out = workdir / f"{name}_{Path(corpus['teach']).stem}_gold_{budget or 'all'}.jsonl"
    if out.exists():
        return out
    records = itertools.islice(srsly.read_jsonl(corpus["teach"]), budget)
    wanted = sorted({r["meta"]["sentence"] for r in records})
    gold = list(read_columns(corpus["train"], encoding=corpus["encoding"]))
    examples = [gold[i] for i in wanted]
    out.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_jsonl(out, examples_to_tasks(examples))
    return out


def teach_corpus(corpus_name: str, teach: str | Path) -> str:
    """Register ``corpus_name`` with its answers replaced by the file ``teach``; returns the new corpus
    name, ``CORPUS-<the file's parent folder>``."""
    path = Path(teach).resolve()
    name = f"{corpus_name}-{path.parent.name}"
    CORPORA[name] = {**CORPORA[corpus_name], "teach": path}
    return name


def row_command(corpus_name: str, budget: int | None, row: str, args) -> tuple[list[str], Path]:
    """The command line that trains one row, and the JSON file a spaCy row writes its scores to."""
    corpus = CORPORA[corpus_name]
    kind, extra = ROWS[row]
    tag = f"{corpus_name}_{budget or 'all'}_{row}"
    workdir = Path(args.workdir)
    out_json = workdir / f"{tag}.json"
    if kind.startswith("spacy"):
        train = gold_subset(corpus, budget, workdir, corpus_name) if kind == "spacy-gold" else corpus["teach"]
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
        if getattr(args, "seed", None) is not None:
            cmd += ["--seed_everything", str(args.seed), "--data.seed", str(args.seed)]
        if row.endswith(("-taught", "-unlabeled")):  # the same row's model, trained first in this workdir, as the teacher
            base = row.removesuffix("-taught").removesuffix("-unlabeled")
            teacher = workdir / f"{corpus_name}_{budget or 'all'}_{base}" / "model"
            if not (teacher / "tagger.json").is_file():
                raise FileNotFoundError(f"{tag} needs its teacher {teacher}: run row {base} "
                                        f"at this budget with this --workdir first")  # fmt: skip
            cmd += ["--data.teacher", str(teacher)]
        if row.endswith("-unlabeled"):
            cmd += ["--data.unlabeled", str(corpus["teach"]), "--data.max_unlabeled", str(args.unlabeled)]
        if kind == "ours-gold":
            cmd += ["--data.train", str(gold_subset(corpus, budget, workdir, corpus_name)), "--data.max_tasks", "null"]
        else:  # the corpus's answers (the config names the same file unless --teach chose another)
            cmd += ["--data.train", str(corpus["teach"])] + (["--data.max_tasks", str(budget)] if budget else [])
    return cmd, out_json


def run_row(corpus_name: str, budget: int | None, row: str, args) -> dict:
    corpus, kind = CORPORA[corpus_name], ROWS[row][0]
    tag = f"{corpus_name}_{budget or 'all'}_{row}"
    workdir = Path(args.workdir)
    export = workdir / tag / "model"  # where row_command's training exports the model
    cmd, out_json = row_command(corpus_name, budget, row, args)
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
    peak_mb = round(int(rss[-1].split("=")[1]) / 1024, 1) if rss else None  # None, not NaN: JSONL readers refuse NaN
    if kind.startswith("spacy"):
        result = json.loads(out_json.read_text())
    else:
        from sparse_ner.core.evaluate import evaluate

        result = evaluate(export, corpus["test"], encoding=corpus["encoding"])
        result["o_bias"] = json.loads((export / "tagger.json").read_text()).get("o_bias", 0.0)  # tuned on dev
    return {"corpus": corpus_name, "budget": budget or "all", "row": row, "max_epochs": args.max_epochs,
            "f1": result["f1"], "precision": result["precision"], "recall": result["recall"],
            "o_bias": result.get("o_bias"),
            "train_seconds": round(seconds, 1), "peak_rss_mb": peak_mb,
            "threads": args.threads, "seed": getattr(args, "seed", None), "command": " ".join(cmd), "machine": f"{platform.machine()} {platform.node()}",
            "date": dt.date.today().isoformat()}


def load_results(path: Path) -> list[dict]:
    return list(srsly.read_jsonl(path)) if path.exists() else []


# The picture: per corpus, one panel per question, few series each, every series its own colour, marker
# and line style (dashed, hollow markers: a gold ceiling).
# panel title -> rows of binary.jsonl (or a method peer of peers.jsonl); the first panel is the comparison
# the benchmark is for (ours vs spaCy as Prodigy trains it), the second ours vs the method peers (on the
# fixture or on a loop's answers), the others the ablations. A panel is drawn for a corpus only where two
# or more of its rows have results there; a row keeps its colour and marker everywhere, its gold ceiling
# the same colour, dashed, with open markers; no two rows of one panel share a colour.
PANELS: dict[str, list[str]] = {
    "ours vs spaCy binary (Prodigy)": ["crf-small", "crf-small-reject-prior", "spacy-binary", "crf-small-gold",
                                       "spacy-gold"],
    "MiniLM-L6: ours vs method peers": ["crf-minilm-shape-looplr", "crf-minilm-shape-looplr-no-rejects",
                                        "crf-minilm-shape-no-rejects", "spacy-partial-tagger",
                                        "pytorch-partial-tagger", "crf-minilm-shape-looplr-gold"],
    "what the loss needs (small encoder)": ["crf-small", "crf-small-no-rejects", "crf-small-no-eer", "crf-small-as-o",
                                            "spacy-as-o"],
    "small encoder variants": ["crf-small", "softmax-small", "crf-small-factored", "crf-small-eer-tight",
                               "crf-small-reject-prior-0.8"],
    "MiniLM-L6: training (6 epochs; + shape, early stopping; loop's rates)": [
        "crf-minilm", "crf-minilm-gold", "crf-minilm-shape", "crf-minilm-shape-gold", "crf-minilm-shape-looplr",
        "crf-minilm-shape-looplr-gold"],
    "MiniLM-L6 variants": ["crf-minilm", "crf-minilm-no-rejects", "crf-minilm-reject-prior",
                           "crf-minilm-shape-looplr", "crf-minilm-shape-looplr-eer-tight",
                           "crf-minilm-shape-looplr-reject-prior"],
    "a teacher's posteriors (second round)": ["crf-small", "crf-small-taught", "crf-minilm-shape-looplr",
                                               "crf-minilm-shape-looplr-taught",
                                               "crf-minilm-shape-looplr-no-rejects-taught", "crf-small-gold",
                                               "crf-minilm-shape-looplr-gold"],
    "encoders: small vs MiniLM-L6": ["crf-small", "crf-small-reject-prior", "crf-minilm", "crf-minilm-shape-looplr",
                                     "crf-small-gold", "crf-minilm-shape-looplr-gold"],
}
STYLE: dict[str, tuple[str, str]] = {  # row -> (colour, marker); line style from the row (gold: dashed)
    "crf-small": ("tab:blue", "o"), "crf-small-reject-prior": ("tab:cyan", "D"), "spacy-binary": ("tab:red", "s"),
    "crf-small-gold": ("tab:blue", "o"), "spacy-gold": ("tab:red", "s"), "crf-minilm": ("tab:purple", "o"),
    "crf-minilm-no-rejects": ("tab:pink", "v"), "spacy-partial-tagger": ("tab:orange", "s"),
    "pytorch-partial-tagger": ("tab:brown", "^"), "crf-minilm-gold": ("tab:purple", "o"),
    "crf-small-no-rejects": ("tab:green", "v"), "crf-small-no-eer": ("tab:brown", "^"),
    "crf-small-as-o": ("tab:gray", "x"), "spacy-as-o": ("tab:red", "x"), "softmax-small": ("tab:green", "D"),
    "crf-small-factored": ("tab:brown", "v"), "crf-small-eer-tight": ("tab:gray", "^"),
    "crf-small-reject-prior-0.8": ("tab:cyan", "P"), "crf-minilm-shape": ("tab:blue", "*"),
    "crf-minilm-reject-prior": ("tab:cyan", "D"), "crf-minilm-shape-gold": ("tab:blue", "*"),
    "crf-minilm-shape-no-rejects": ("tab:cyan", "P"), "crf-minilm-shape-looplr": ("tab:olive", "*"),
    "crf-minilm-shape-looplr-no-rejects": ("tab:green", "v"), "crf-minilm-shape-looplr-gold": ("tab:olive", "*"),
    "crf-minilm-shape-looplr-eer-tight": ("tab:gray", "^"), "crf-minilm-shape-looplr-reject-prior": ("tab:red", "X"),
    "crf-small-taught": ("tab:pink", "P"), "crf-minilm-shape-looplr-taught": ("tab:orange", "P"),
    "crf-minilm-shape-looplr-no-rejects-taught": ("tab:purple", "P"),
}
ALL_TASKS = {"conll": 18540, "resume": 5170}  # x position of the budget "all"


def load_peers(path: Path) -> list[dict]:
    """The method peers' rows (``scripts/bench_peers.py``) as rows of this benchmark (test F1 by tasks)."""
    if not path.exists():
        return []
    return [{"corpus": r["corpus"], "budget": r["tasks"], "row": r["peer"], "f1": r["test_f1"]}
            for r in srsly.read_jsonl(path) if r.get("limit_eval") is None]


def panel_grid(points: dict[tuple[str, str], dict[int, float]]) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """Per corpus (sorted), the :data:`PANELS` with two or more rows that have points there, each with
    those rows; corpora without such a panel are left out."""
    grid = []
    for corpus in sorted({corpus for corpus, _ in points}):
        panels = [(title, [row for row in rows if (corpus, row) in points]) for title, rows in PANELS.items()]
        panels = [(title, rows) for title, rows in panels if len(rows) >= 2]
        if panels:
            grid.append((corpus, panels))
    return grid


def plot(results: list[dict], peers: list[dict], png: Path) -> None:
    """Test F1 against the number of teach tasks, one row of :data:`PANELS` per corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points: dict[tuple[str, str], dict[int, float]] = {}
    corpora = sorted({r["corpus"] for r in results})  # the peers only where this file has rows
    for r in results + [p for p in peers if p["corpus"] in corpora]:  # a later row of the same point wins
        n = ALL_TASKS.get(r["corpus"], 0) if r["budget"] == "all" else int(r["budget"])
        points.setdefault((r["corpus"], r["row"]), {})[n] = r["f1"]
    grid = panel_grid(points)
    if not grid:
        return
    width = max(len(panels) for _, panels in grid)
    fig, axes = plt.subplots(len(grid), width, figsize=(5.2 * width, 4.2 * len(grid)), squeeze=False)
    for i, (corpus, panels) in enumerate(grid):
        for ax in axes[i][len(panels):]:
            ax.axis("off")
        for ax, (title, rows) in zip(axes[i], panels):
            series = [(row, sorted(points[corpus, row].items())) for row in rows]
            for row, pts in series:
                color, marker = STYLE[row]
                gold = row.endswith("gold")
                ax.plot([n for n, _ in pts], [f for _, f in pts], "--" if gold else "-", color=color, marker=marker,
                        markerfacecolor="none" if gold else color, label=f"{row} (gold ceiling)" if gold else row)
            budgets = sorted({n for _, pts in series for n, _ in pts})
            ax.set_xscale("log")
            ax.set_xticks(budgets, [f"{n} (all)" if n == ALL_TASKS.get(corpus) else str(n) for n in budgets])
            ax.minorticks_off()
            ax.set_ylim(0, 1)
            ax.set_xlabel("ner.teach tasks (first N)")
            ax.set_ylabel("test entity F1")
            ax.set_title(f"{corpus}: {title}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def report(results: list[dict], png: Path | None) -> str:
    gold = {(r["corpus"], r["budget"], r["row"]): r["f1"] for r in results}
    lines = ["| corpus | budget | row | F1 | P | R | O bias | recovery | F1 - spaCy binary | epochs | train s | peak RSS MB |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = list(ROWS)
    size = lambda b: float("inf") if b == "all" else int(b)  # noqa: E731
    for r in sorted(results, key=lambda r: (r["corpus"], size(r["budget"]), order.index(r["row"]))):
        family = "spacy" if r["row"].startswith("spacy") else "minilm" if "minilm" in r["row"] else "ours"
        # the same model on gold, e.g. crf-minilm-shape-gold (an accepts-only row: its model's gold)
        # (a ROW-unlabeled row: the gold row given the same unanswered texts, where it was run)
        base = r["row"].removesuffix("-taught").removesuffix("-unlabeled").removesuffix("-no-rejects")
        own = r["row"].endswith("-unlabeled") and gold.get((r["corpus"], r["budget"], f"{base}-gold-unlabeled"))
        own = own or gold.get((r["corpus"], r["budget"], f"{base}-gold"))
        ceiling = own or gold.get((r["corpus"], r["budget"], CEILING[family]))
        is_gold = "-gold" in r["row"]
        rec = f"{r['f1'] / ceiling:.2f}" if ceiling and not is_gold else ""
        peer = gold.get((r["corpus"], r["budget"], "spacy-binary"))
        delta = f"{r['f1'] - peer:+.3f}" if peer is not None and family != "spacy" and not is_gold else ""
        lines.append(f"| {r['corpus']} | {r['budget']} | {r['row']} | {r['f1']:.3f} | {r['precision']:.3f} | "
                     f"{r['recall']:.3f} | {'-' if r.get('o_bias') is None else format(r['o_bias'], '+.1f')} | {rec} | {delta} | {r['max_epochs']} | {r['train_seconds']:.0f} | "
                     f"{'-' if r.get('peak_rss_mb') is None else format(r['peak_rss_mb'], '.0f')} |")
    if png is not None and results:
        plot(results, load_peers(png.parent / "peers.jsonl"), png)
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
    ap.add_argument("--seed", type=int, help="seed of our rows' training (weights, batch order; the config's is 0); "
                    "give each seed its own --workdir and --results")
    ap.add_argument("--unlabeled", type=int, default=2000, help="unanswered texts of the ROW-unlabeled rows")
    ap.add_argument("--report", action="store_true", help="only print the table and write the PNG")
    ap.add_argument("--teach", metavar="JSONL",
                    help="train on these answers instead of the corpus's simulated teach file (e.g. the "
                         "answers_uncertainty.jsonl of `python -m sparse_ner.simulate`: the loop's own questions); "
                         "rows are filed under the corpus name CORPUS-<file's parent folder>; use its own --results")
    args = ap.parse_args(argv)
    if args.teach:
        if not Path(args.teach).is_file():
            ap.error(f"--teach {args.teach}: no such file")
        args.corpus = teach_corpus(args.corpus, args.teach)
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
