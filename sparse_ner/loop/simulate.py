"""Simulate the annotation loop against gold answers and compare question-selection strategies.

:func:`simulate` runs a :class:`SimulationConfig` (:func:`load_config` reads one from YAML); its
command line is ``python -m sparse_ner.simulate --config configs/simulate_conll.yaml [--answers 2000]
[--strategies uncertainty random]`` (:mod:`sparse_ner.cli.simulate`). For each strategy a cold
:class:`~sparse_ner.loop.online.OnlineTagger` (same seed, same vocabulary, same patterns) is taught
by an oracle that accepts a suggested span exactly when it is a gold entity (same tokens and label)
and rejects it otherwise. Answers are given in batches of ``batch_size`` (10), each batch goes to
``update()``, and entity F1 on the dev set (``dev``: one file or a list read one after the other; its first
``dev_limit`` sentences; 0: all) is logged
every ``eval_every`` answers. With ``manual`` N, the first N texts of the shuffled training texts are
annotated completely (``ner_manual``, every gold entity; as running ``sparse_ner.correct`` before
``sparse_ner.teach``) and learned before the first question; they leave the stream, and the curves
count the binary answers after them. With ``idle_steps`` N, each ``update()`` is followed by N
:meth:`~sparse_ner.loop.online.OnlineTagger.consolidate` steps on the answer memory (what
``start_idle_training`` does while a real annotator reads the next questions). Strategies:

- ``uncertainty``: the training texts in a shuffled order, scored by the model,
  :func:`~sparse_ner.loop.selection.prefer_uncertain` picks the questions (``ner.teach``);
- ``random``: the same shuffled texts, every suggestion asked in order (no selection);
- ``patterns``: only the pattern matches are asked, in order (the model still learns from them);
- ``static``: the first ``answers`` records of a fixed db-out file of simulated answers
  (``static``, e.g. the benchmark's ``conll2003_train_teach.jsonl``), fed through the same
  ``update()`` in file order.

Writes ``curves.csv`` (strategy, answers, accepts, precision, recall, f1, seconds, then
``f1_<LABEL>`` and ``accepts_<LABEL>`` for each label) and ``curves.png`` (F1 against answers, and
each label's F1 beside it: a label the questions never reach shows as a flat line) to ``output``, with the resolved config, and each strategy's
answers as they are given to ``answers_<strategy>.jsonl`` (db-out records: the ``manual`` texts first,
``ner_manual``; then the question's one span, ``answer``, ``_view_id`` ``ner``, the suggester's ``meta``; appended batch by batch, so a killed run
keeps what it answered), which ``sparse_ner.train`` takes like a Prodigy export: the answers to the
model's own questions, not to a fixed file's. Both are rewritten when the same ``output`` runs again.
Paths in the config are relative to the working directory.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, TextIO, TypedDict

from sparse_ner.data.example import Example
from sparse_ner.data.hashes import input_hash
from sparse_ner.data.prodigy import token_dicts

if TYPE_CHECKING:  # torch is imported when a simulation runs, not by the command line's --help
    from sparse_ner.core.tagger import TaggerConfig

STRATEGIES = ("uncertainty", "random", "patterns", "static")


class SimulationConfig(TypedDict):
    """The options of a simulation (a YAML config holds some of them; :data:`DEFAULTS` the rest)."""

    train: str  # gold training corpus (column file or complete JSONL): the texts and the oracle
    dev: str | list[str]  # gold dev corpus (or several, read one after the other) for the periodic F1
    encoding: str  # tag encoding of column files
    labels: list[str]
    patterns: str | None  # match patterns (JSONL) for the cold start and the "patterns" strategy
    static: str | None  # db-out JSONL of answers for the "static" strategy
    tagger: TaggerConfig  # the cold model (YAML: a mapping of its options; small encoder: min_count 1 unless given)
    online: dict[str, Any]  # OnlineTagger.from_config options
    strategies: list[str]  # some of STRATEGIES
    answers: int  # answers per strategy
    batch_size: int  # answers per update()
    eval_every: int  # answers between dev evaluations
    dev_limit: int  # dev sentences evaluated (0: all)
    seed: int
    threads: int | None  # torch threads (None: torch's default)
    output: str  # folder for curves.csv, curves.png, config.json
    idle_steps: int  # consolidate() steps after each update(): the model learning while the annotator works
    sorter: dict[str, Any]  # options of prefer_uncertain for "uncertainty": algorithm, bias, decay
    manual: int  # texts annotated completely before the questions (as sparse_ner.correct first); not in the stream


class CurveRow(TypedDict):
    """One point of a learning curve (a row of ``curves.csv``)."""

    strategy: str
    answers: int
    accepts: int
    precision: float
    recall: float
    f1: float
    seconds: float
    f1_by_label: dict[str, float]  # dev F1 of each label (columns f1_<LABEL> of curves.csv)
    accepts_by_label: dict[str, int]  # accepted answers of each label so far (columns accepts_<LABEL>)


# train, dev and labels have no default: load_config requires them
DEFAULTS: dict[str, Any] = {
    "train": None, "dev": None, "encoding": "iob1", "labels": None, "patterns": None, "static": None,
    "tagger": {}, "online": {},
    "strategies": ["uncertainty", "random", "patterns"], "answers": 2000, "batch_size": 10,
    "eval_every": 200, "dev_limit": 1000, "seed": 0, "threads": None, "output": "runs/simulate",
    "idle_steps": 0, "sorter": {}, "manual": 0,
}  # fmt: skip


def read_gold(path: str | Path, encoding: str = "iob1") -> list[Example]:
    """Complete examples from a column file or a JSONL of complete annotations."""
    from sparse_ner.data.read import read_any

    return list(read_any(path, gold=True, column_encoding=encoding, name=str(path)))


def as_task(ex: Example, index: int) -> dict:
    """An unanswered task for a gold example (its tokens are kept)."""
    key = ex.input_hash if ex.input_hash is not None else input_hash(ex.text)
    return {"text": ex.text, "tokens": token_dicts(ex.tokens), "_input_hash": key, "meta": {"sentence": index}}


def oracle(task: dict, gold: dict[int, set[tuple[int, int, str]]]) -> dict:
    """``task`` answered: accept exactly when its (one) span is a gold entity of the text."""
    span = task["spans"][0]
    key = (span["token_start"], span["token_end"], span["label"])
    return {**task, "answer": "accept" if key in gold.get(task["_input_hash"], set()) else "reject",
            "_view_id": "ner"}  # fmt: skip


def complete(task: dict, gold: dict[int, set[tuple[int, int, str]]]) -> dict:
    """``task`` annotated completely (``ner_manual``): every gold entity of the text, accepted."""
    toks = task["tokens"]
    spans = [{"start": toks[s]["start"], "end": toks[e]["end"], "token_start": s, "token_end": e, "label": label}
             for s, e, label in sorted(gold.get(task["_input_hash"], ()))]  # fmt: skip
    return {**task, "spans": spans, "answer": "accept", "_view_id": "ner_manual"}


def dev_f1(online: Any, dev: list[Example]) -> dict[str, float]:
    """Entity ``precision``, ``recall`` and ``f1`` on ``dev`` with the loop's prediction weights, and
    ``<LABEL>_f1`` of each label."""
    from sparse_ner.core.metrics import EntityF1

    metric = EntityF1(online.labels)
    with online.learner.averaged_weights():  # holds the lock while the averaged weights are in
        preds = online.tagger.tag(dev, batch_size=128)
    metric.update([[s[:3] for s in spans] for spans in preds], [[s.key for s in ex.accepted] for ex in dev])
    keep = {"precision", "recall", "f1"} | {f"{label}_f1" for label in online.labels}
    return {k: float(v) for k, v in metric.compute().items() if k in keep}


def questions(strategy: str, online: Any, tasks: list[dict], static: str | None,
              sorter: dict | None = None) -> Iterator[dict]:  # fmt: skip
    """The answered-or-not tasks a strategy puts to the annotator, in order."""
    from sparse_ner.loop.selection import in_order, prefer_uncertain

    if strategy == "uncertainty":
        yield from prefer_uncertain(online(tasks), **{"seed": online.options["seed"], **(sorter or {})})
    elif strategy == "random":
        yield from in_order(online(tasks))
    elif strategy == "patterns":
        yield from (t for _, t in online(tasks) if "pattern" in t["meta"])
    elif strategy == "static":
        if not static:
            raise ValueError("strategy 'static' needs 'static': a db-out JSONL of answers")
        from sparse_ner.data.io import read_jsonl

        yield from (record for _, record in read_jsonl(static))
    else:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")


def run(strategy: str, cfg: SimulationConfig, train: list[Example], dev: list[Example],
        log: TextIO | None = None, answers_path: Path | None = None) -> list[CurveRow]:  # fmt: skip
    """One simulated annotation session; returns the logged rows. With ``answers_path``, the answers
    are written there (JSONL, a batch at a time; the file is started anew)."""
    import srsly
    import torch

    from sparse_ner.loop.online import OnlineTagger
    from sparse_ner.loop.patterns import read_patterns

    torch.manual_seed(cfg["seed"])
    patterns = read_patterns(cfg["patterns"], cfg["labels"]) if cfg["patterns"] else None
    tasks = [as_task(ex, i) for i, ex in enumerate(train)]
    online = OnlineTagger.from_config(cfg["labels"], cfg["tagger"], texts=tasks, patterns=patterns, seed=cfg["seed"],
                                      **cfg["online"])  # fmt: skip
    random.Random(cfg["seed"]).shuffle(tasks)
    if not cfg["manual"]:  # as sparse_ner.teach on a new model: the stream's first texts, before any question
        online.warm_start(tasks)  # (sparse_ner.correct, which starts the complete-texts workflow, has no patterns)
    gold = {(ex.input_hash if ex.input_hash is not None else input_hash(ex.text)): {s.key for s in ex.accepted}
            for ex in train}  # fmt: skip
    manual = [complete(t, gold) for t in tasks[: cfg["manual"]]]
    tasks = tasks[cfg["manual"] :]
    stream = questions(strategy, online, tasks, cfg["static"], cfg["sorter"])
    rows: list[CurveRow] = []
    answered = accepts = 0
    by_label = dict.fromkeys(cfg["labels"], 0)  # accepts per label
    start = time.perf_counter()

    def record() -> None:
        f1 = dev_f1(online, dev)
        row = CurveRow(strategy=strategy, answers=answered, accepts=accepts, precision=f1["precision"],
                       recall=f1["recall"], f1=f1["f1"], seconds=round(time.perf_counter() - start, 1),
                       f1_by_label={label: f1[f"{label}_f1"] for label in cfg["labels"]},
                       accepts_by_label=dict(by_label))  # fmt: skip
        rows.append(row)
        if log is not None:
            print(json.dumps(row), file=log, flush=True)

    def learn(batch: list[dict]) -> None:  # update(), the answers file, the idle steps
        online.update(batch)
        if answers_path is not None:
            srsly.write_jsonl(answers_path, batch, append=True, append_new_line=False)
        if cfg["idle_steps"]:
            online.consolidate(cfg["idle_steps"])

    if answers_path is not None:
        answers_path.write_text("", encoding="utf8")
    for i in range(0, len(manual), cfg["batch_size"]):  # the complete annotations first, as the loop gets them
        learn(manual[i : i + cfg["batch_size"]])
    record()
    next_eval = cfg["eval_every"]
    while answered < cfg["answers"]:
        batch = list(itertools.islice(stream, min(cfg["batch_size"], cfg["answers"] - answered)))
        if not batch:
            break
        if strategy != "static":
            batch = [oracle(t, gold) for t in batch]
        learn(batch)
        answered += len(batch)
        for t in batch:
            if t.get("answer") == "accept":
                accepts += 1
                for span in t.get("spans") or []:
                    by_label[span["label"]] = by_label.get(span["label"], 0) + 1
        if answered >= next_eval:
            record()
            next_eval += cfg["eval_every"]
    if rows[-1]["answers"] != answered:
        record()
    return rows


def plot(rows: list[CurveRow], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    labels = list(dict.fromkeys(label for r in rows for label in r.get("f1_by_label", {})))
    fig, (ax, by) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for strategy in strategies:
        pts = [(r["answers"], r["f1"]) for r in rows if r["strategy"] == strategy]
        ax.plot(*zip(*pts), marker="o", label=strategy)
    styles = ["-", "--", ":", "-."]
    for i, strategy in enumerate(strategies):  # colour: label; line style: strategy
        mine = [r for r in rows if r["strategy"] == strategy]
        for j, label in enumerate(labels):
            by.plot([r["answers"] for r in mine], [r["f1_by_label"].get(label, 0.0) for r in mine], color=f"C{j}",
                    linestyle=styles[i % len(styles)], label=f"{label} ({strategy})" if len(strategies) > 1 else label)
    ax.set_xlabel("answers")
    ax.set_ylabel("dev entity F1")
    ax.set_title(title)
    by.set_xlabel("answers")
    by.set_title("F1 of each label")
    for a in (ax, by):
        a.grid(alpha=0.3)
        a.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> SimulationConfig:
    """:data:`DEFAULTS`, then the YAML file at ``path``, then ``overrides`` (a ``None`` value sets nothing)."""
    import yaml

    cfg = dict(DEFAULTS)
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if path:
        layers.append((str(path), yaml.safe_load(Path(path).read_text(encoding="utf8")) or {}))
    layers.append(("overrides", {k: v for k, v in (overrides or {}).items() if v is not None}))
    for where, layer in layers:
        unknown = set(layer) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; expected some of {sorted(DEFAULTS)}")
        cfg.update(layer)
    for key in ("train", "dev", "labels"):
        if not cfg[key]:
            raise ValueError(f"the config needs {key!r}")
    from sparse_ner.core.tagger import TaggerConfig

    try:
        cfg["tagger"] = TaggerConfig.parse(cfg["tagger"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"tagger: {err}") from None
    return SimulationConfig(**cfg)  # type: ignore[typeddict-item]


def simulate(cfg: SimulationConfig, log: TextIO | None = sys.stderr) -> list[CurveRow]:
    """Run every strategy of ``cfg``; write ``curves.csv``, ``curves.png`` and ``config.json`` to
    ``cfg["output"]``; return the rows of the curves (one JSON line per row to ``log`` as they come)."""
    if cfg["threads"]:
        import torch

        torch.set_num_threads(int(cfg["threads"]))
    train = [ex for ex in read_gold(cfg["train"], cfg["encoding"]) if ex.tokens]
    dev_paths = cfg["dev"] if isinstance(cfg["dev"], list) else [cfg["dev"]]
    dev = [ex for path in dev_paths for ex in read_gold(path, cfg["encoding"]) if ex.tokens]
    if cfg["dev_limit"]:
        dev = dev[: cfg["dev_limit"]]
    out = Path(cfg["output"])
    out.mkdir(parents=True, exist_ok=True)
    resolved = {**cfg, "tagger": cfg["tagger"].as_dict()}
    (out / "config.json").write_text(json.dumps(resolved, indent=2) + "\n", encoding="utf8")
    rows: list[CurveRow] = []
    for strategy in cfg["strategies"]:
        rows += run(strategy, cfg, train, dev, log, out / f"answers_{strategy}.jsonl")
        write_csv(rows, out / "curves.csv")
        plot(rows, out / "curves.png", f"{Path(cfg['train']).parent.name}: dev F1 ({len(dev)} sentences)")
    return rows


def write_csv(rows: Iterable[CurveRow], path: Path) -> None:
    """``rows`` as CSV, the per-label dicts flattened into ``f1_<LABEL>`` and ``accepts_<LABEL>`` columns."""
    rows = list(rows)
    labels = list(dict.fromkeys(label for r in rows for label in r["f1_by_label"]))
    fields = ["strategy", "answers", "accepts", "precision", "recall", "f1", "seconds"]
    with open(path, "w", newline="", encoding="utf8") as f:
        writer = csv.DictWriter(f, fieldnames=fields + [f"{k}_{label}" for k in ("f1", "accepts") for label in labels])
        writer.writeheader()
        for r in rows:
            flat = {k: r[k] for k in fields}  # type: ignore[literal-required]
            flat.update({f"f1_{label}": v for label, v in r["f1_by_label"].items()})
            flat.update({f"accepts_{label}": v for label, v in r["accepts_by_label"].items()})
            writer.writerow(flat)

