"""How much of the gold annotation the first N teach answers reveal (issue 16, part 2: why recovery is
lowest at the smallest budgets).

    python scripts/analyze_coverage.py --teach ../shared/data/teach/conll2003_train_teach.jsonl \
        --gold ../shared/data/conll2003/train.txt --tasks 1000 2000 6000 0

For the first ``--tasks`` tasks (0: all) of a simulated ``ner.teach`` file: the texts they ask about, the
gold entities of those texts (``--gold``, the column file the answers were simulated from; ``meta.sentence``
is the sentence's index), how many of those entities an accept names (*coverage*: what a binary model is told
of what the gold-trained model of the same texts sees), the answers by kind, and the share of the texts'
tokens whose tag the answers fix (inside an accepted span; every other token stays open, as no binary answer
says a token is ``O``). Prints a Markdown table; nothing of the corpus is written.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def coverage(tasks: list[dict], gold: list) -> dict[str, float]:
    """The counts of one budget: ``tasks`` the first N teach records, ``gold`` the corpus's examples."""
    by_text: dict[int, list[dict]] = defaultdict(list)
    for task in tasks:
        by_text[task["meta"]["sentence"]].append(task)
    answers: Counter = Counter(task["answer"] for task in tasks)
    entities = named = tokens = fixed = 0
    for sentence, mine in by_text.items():
        ex = gold[sentence]
        keys = {(s.token_start, s.token_end, s.label) for s in ex.accepted}
        accepted = {(sp["token_start"], sp["token_end"], sp["label"]) for t in mine if t["answer"] == "accept" for sp in t["spans"]}
        entities += len(keys)
        named += len(accepted & keys)
        tokens += len(ex.words)
        fixed += len({i for s, e, _ in accepted for i in range(s, e + 1)})
    return {"tasks": len(tasks), "texts": len(by_text), "gold entities": entities, "accept": answers["accept"],
            "reject": answers["reject"], "ignore": answers["ignore"], "coverage": named / max(entities, 1),
            "entities per text": entities / max(len(by_text), 1), "tokens fixed": fixed / max(tokens, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teach", required=True, help="simulated ner.teach answers (db-out JSONL with meta.sentence)")
    ap.add_argument("--gold", required=True, help="the column file the answers were simulated from")
    ap.add_argument("--encoding", default="iob1")
    ap.add_argument("--tasks", type=int, nargs="+", default=[1000, 2000, 6000, 0], help="budgets (0: all tasks)")
    args = ap.parse_args(argv)
    from sparse_ner.data.columns import read_columns
    from sparse_ner.data.io import read_jsonl

    gold = list(read_columns(args.gold, args.encoding))
    records = [task for _, task in read_jsonl(args.teach)]
    for task in itertools.islice(records, max(args.tasks) if 0 not in args.tasks else None):
        ex = gold[task["meta"]["sentence"]]
        if ex.text != task["text"]:
            raise SystemExit(f"{args.teach}: task {task['_task_hash']}: meta.sentence does not point at its text in {args.gold}")
    rows = [coverage(records[: n or None], gold) for n in args.tasks]
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---:|" * len(cols))
    for row in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else f"{v:,}" for v in row.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
