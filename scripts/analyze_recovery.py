"""Error analysis of recovery: what a model trained on binary answers misses or invents that the same
model trained on the gold of the same texts gets right (issue 16, part 2).

    OMP_NUM_THREADS=1 python scripts/analyze_recovery.py --binary BINARY_MODEL --gold GOLD_MODEL \
        --teach ../shared/data/teach/conll2003_train_teach.jsonl --tasks 1000 --json OUT.json

Both models tag the same gold test set (``--test``, CoNLL columns). Each gold entity is put in one
cell of (found by the gold-trained model?, found by the binary-trained model?); the entities only the
gold-trained model finds are split by what the binary model did instead (nothing overlapping: a
*miss*; the same span with another label: *label*; an overlapping span: *boundary*) and by what the
answers of the first ``--tasks`` tasks said about the entity's words: ``accepted`` (this string was
accepted with this label at least once), ``rejected only`` (the string was answered, never
accepted with this label), ``unseen`` (never in an answer). The binary model's false positives that
the gold model does not make are split the same way (*spurious*: no gold entity overlaps). Per label
precision and recall of both models complete the picture, with each model's expected share of entity
tokens on the test set (the posterior mass off ``O``, the quantity the entity-ratio penalty bounds)
beside the gold share. Nothing of the corpora is written: the
JSON holds counts and the most frequent strings of each cell (CoNLL-2003 is research-only: keep the
output out of the repository unless the strings are removed, ``--no-strings``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sparse_ner.data.columns import read_columns  # noqa: E402


def answered_strings(teach: Path, tasks: int) -> tuple[set, set]:
    """(lowercased string, label) accepted at least once; and answered (accepted or rejected)."""
    from sparse_ner.data.io import read_jsonl

    accepted, answered = set(), set()
    for i, (_, rec) in enumerate(read_jsonl(teach)):
        if i >= tasks:
            break
        for span in rec.get("spans") or []:
            key = (rec["text"][span["start"] : span["end"]].lower(), span["label"])
            answered.add(key)
            if rec.get("answer") == "accept":
                accepted.add(key)
    return accepted, answered


def kind_of(span: tuple[int, int, str], others: set) -> str:
    s, e, label = span
    if any(o[:2] == (s, e) for o in others):
        return "label"
    if any(o[0] <= e and s <= o[1] for o in others):
        return "boundary"
    return "miss"


def expected_ratio(tagger, examples, batch_size: int = 64) -> float:
    """The model's expected share of entity tokens over ``examples``: posterior mass off ``O`` / words."""
    o = tagger.tags.index("O")
    marginals = tagger.token_marginals(examples, batch_size)  # per example (n_words, K)
    words = sum(len(m) for m in marginals)
    return sum(float((1.0 - m[:, o]).sum()) for m in marginals) / max(1, words)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="model trained on the binary answers")
    ap.add_argument("--gold", required=True, help="the same model trained on the gold of the same texts")
    ap.add_argument("--teach", required=True, help="the db-out answers the binary model was trained on")
    ap.add_argument("--tasks", type=int, required=True, help="how many of its first tasks")
    ap.add_argument("--test", default=str(ROOT.parent / "shared/data/conll2003/test.txt"))
    ap.add_argument("--encoding", default="iob1")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-strings", action="store_true", help="counts only (no corpus text in the output)")
    args = ap.parse_args(argv)

    from sparse_ner.core.export import load

    test = [ex for ex in read_columns(args.test, args.encoding) if ex.tokens]
    preds, ratios = {}, {}
    for name in ("binary", "gold"):
        tagger = load(getattr(args, name))
        preds[name] = [{s[:3] for s in spans} for spans in tagger.tag(test, batch_size=64)]
        ratios[name] = round(expected_ratio(tagger, test), 4)
    ratios["truth"] = round(sum(s.token_end - s.token_start + 1 for ex in test for s in ex.accepted)
                            / sum(len(ex.tokens) for ex in test), 4)  # fmt: skip
    accepted, answered = answered_strings(Path(args.teach), args.tasks)

    def seen(ex, span) -> str:
        key = (" ".join(ex.words[span[0] : span[1] + 1]).lower(), span[2])
        text_key = (ex.text[ex.tokens[span[0]].start : ex.tokens[span[1]].end].lower(), span[2])
        if key in accepted or text_key in accepted:
            return "accepted"
        return "rejected only" if key in answered or text_key in answered else "unseen"

    cells: Counter = Counter()
    lost: Counter = Counter()  # (kind, seen, label) gold entities only the gold model finds
    invented: Counter = Counter()  # (kind, seen, label) binary false positives the gold model avoids
    strings: dict[str, Counter] = defaultdict(Counter)
    per_label = {m: defaultdict(Counter) for m in ("binary", "gold")}
    for i, ex in enumerate(test):
        truth = {s.key for s in ex.accepted}
        for m in ("binary", "gold"):
            for s in preds[m][i]:
                per_label[m][s[2]]["tp" if s in truth else "fp"] += 1
            for s in truth - preds[m][i]:
                per_label[m][s[2]]["fn"] += 1
        for span in truth:
            g, b = span in preds["gold"][i], span in preds["binary"][i]
            cells[f"gold {'found' if g else 'missed'}, binary {'found' if b else 'missed'}"] += 1
            if g and not b:
                key = (kind_of(span, preds["binary"][i]), seen(ex, span), span[2])
                lost[key] += 1
                strings[f"lost {key[0]} {key[2]}"][" ".join(ex.words[span[0] : span[1] + 1])] += 1
        for span in preds["binary"][i] - truth - preds["gold"][i]:
            key = ("spurious" if kind_of(span, truth) == "miss" else kind_of(span, truth), seen(ex, span), span[2])
            invented[key] += 1
            strings[f"invented {key[0]} {key[2]}"][" ".join(ex.words[span[0] : span[1] + 1])] += 1

    def prf(c: Counter) -> dict:
        p = c["tp"] / max(1, c["tp"] + c["fp"])
        r = c["tp"] / max(1, c["tp"] + c["fn"])
        return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(2 * p * r / max(1e-9, p + r), 3),
                "tp": c["tp"], "fp": c["fp"], "fn": c["fn"]}  # fmt: skip

    result = {
        "binary": args.binary, "gold": args.gold, "tasks": args.tasks, "test_sentences": len(test),
        "cells": dict(cells), "expected_entity_ratio": ratios,
        "per_label": {m: {lab: prf(c) for lab, c in sorted(per_label[m].items())} for m in per_label},
        "total": {m: prf(sum(per_label[m].values(), Counter())) for m in per_label},
        "lost": {" / ".join(k): v for k, v in lost.most_common()},
        "invented": {" / ".join(k): v for k, v in invented.most_common()},
    }  # fmt: skip
    if not args.no_strings:
        result["strings"] = {k: dict(c.most_common(8)) for k, c in sorted(strings.items())}
    for m in ("gold", "binary"):
        t = result["total"][m]
        print(f"{m}-trained: P {t['precision']} R {t['recall']} F1 {t['f1']} (tp {t['tp']} fp {t['fp']} fn {t['fn']}); "
              + ", ".join(f"{lab} P {v['precision']} R {v['recall']}" for lab, v in result["per_label"][m].items()))
    print("expected share of entity tokens on test (posterior mass off O):", ratios)
    print("gold entities:", dict(cells))
    by = lambda c, i: dict(sum((Counter({k[i]: v}) for k, v in c.items()), Counter()).most_common())  # noqa: E731
    print(f"lost (gold model finds, binary does not): {sum(lost.values())}; by kind {by(lost, 0)}; "
          f"by answers {by(lost, 1)}; by label {by(lost, 2)}")
    print(f"invented (binary false positives the gold model avoids): {sum(invented.values())}; by kind "
          f"{by(invented, 0)}; by answers {by(invented, 1)}; by label {by(invented, 2)}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
