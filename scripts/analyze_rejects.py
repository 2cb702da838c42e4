"""How much a model already rules out the spans that annotators rejected (issue 16, part 3: why the
rejects of the simulated teach answers add nothing to MiniLM-L6).

    OMP_NUM_THREADS=1 python scripts/analyze_rejects.py --model MODEL \
        --teach ../shared/data/teach/conll2003_train_teach.jsonl --gold ../shared/data/conll2003/train.txt \
        --tasks 2000

For every accepted or rejected task of the first ``--tasks`` tasks: the model's exact probability
(CRF span marginal, :meth:`~sparse_ner.core.crf.CRF.span_probs`) that the task's span is an entity
with its label, in the task's own text. Rejects are split by what the gold annotation of the text
(``--gold``, the column file the answers were simulated from; ``meta.sentence`` is the sentence's
index) says about the span: a gold span with another label (*wrong label*), one token off a gold
span's boundary (*boundary off by one*), or neither (*no entity*). A reject's loss term is
``-log(1 - P)``: where a model already gives the rejected span P near 0, the reject carries no
gradient and no information for it. Prints a Markdown table; nothing of the corpus is written.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = ("accept", "wrong label", "boundary off by one", "no entity")


def reject_kind(span: tuple[int, int], gold: dict[tuple[int, int], str]) -> str:
    """What the gold annotation says of a rejected ``(token_start, token_end)``."""
    s, e = span
    if span in gold:
        return "wrong label"
    if any(abs(s - a) + abs(e - b) == 1 for a, b in gold):
        return "boundary off by one"
    return "no entity"


def main() -> None:
    import torch

    from sparse_ner import load
    from sparse_ner.data.columns import read_columns
    from sparse_ner.data.example import Example
    from sparse_ner.data.io import read_jsonl
    from sparse_ner.data.prodigy import parse_tokens

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="an exported model folder")
    p.add_argument("--teach", type=Path, default=ROOT.parent / "shared/data/teach/conll2003_train_teach.jsonl")
    p.add_argument("--gold", type=Path, default=ROOT.parent / "shared/data/conll2003/train.txt")
    p.add_argument("--encoding", default="iob1")
    p.add_argument("--tasks", type=int, default=2000, help="the first N tasks (the training budget)")
    args = p.parse_args()
    torch.set_num_threads(1)
    tagger = load(args.model).eval()
    gold = [ex for ex in read_columns(args.gold, args.encoding)]
    rows = []  # (example, (start, end, label), kind)
    for _, task in itertools.islice(read_jsonl(args.teach), args.tasks):
        if task.get("answer") not in ("accept", "reject"):
            continue
        span = task["spans"][0]
        ex = Example(task["text"], parse_tokens(task, where=str(args.teach)))
        g = gold[task["meta"]["sentence"]]
        if g.words != ex.words:
            raise SystemExit(f"{args.teach}: task {task['_task_hash']}: meta.sentence does not point at its text in {args.gold}")
        key = (span["token_start"], span["token_end"])
        kind = "accept" if task["answer"] == "accept" else reject_kind(key, {(s.token_start, s.token_end): s.label for s in g.accepted})
        rows.append((ex, (*key, span["label"]), kind))
    probs = [ps[0] for ps in tagger.span_probs([ex for ex, _, _ in rows], [[sp] for _, sp, _ in rows], batch_size=32)]
    by_kind = defaultdict(list)
    for (_, _, kind), prob in zip(rows, probs):
        by_kind[kind].append(prob)
    print(f"model {args.model}, first {args.tasks} tasks of {args.teach.name}\n")
    print("| answered span | n | mean P(span) | median | share P > 0.5 | share P < 0.05 | mean -log(1 - P) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in KINDS:
        ps = by_kind.get(kind)
        if ps:
            loss = statistics.mean(-math.log(max(1e-9, 1 - x)) for x in ps)
            print(f"| {kind} | {len(ps)} | {statistics.mean(ps):.3f} | {statistics.median(ps):.3f} | "
                  f"{sum(x > 0.5 for x in ps) / len(ps):.2f} | {sum(x < 0.05 for x in ps) / len(ps):.2f} | {loss:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
