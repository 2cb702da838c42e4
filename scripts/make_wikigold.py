"""Split WikiGold by document into train/dev/test db-out JSONL, and simulate teach answers on train.

    python scripts/make_wikigold.py [--src ../shared/data/wikigold] [--out examples/wikigold]

The 145 documents (``-DOCSTART-``) are shuffled with ``random.Random(SEED)`` and cut 70/15/15 %
(101/22/22 documents). Each sentence becomes one complete ``ner_manual`` accept record with
``meta = {"source": "wikigold", "document": i, "sentence": j}`` (indices in the original file).
``train_teach.jsonl`` holds simulated ``ner.teach`` answers on the train sentences (seed 0).
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

import srsly

from sparse_ner.data.columns import read_documents
from sparse_ner.data.prodigy import examples_to_tasks
from sparse_ner.data.simulate_teach import simulate_teach

SEED = 0
FRACTIONS = {"train": 0.70, "dev": 0.15}  # test: the rest
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--src", type=Path, default=ROOT.parent / "shared" / "data" / "wikigold")
    p.add_argument("--out", type=Path, default=ROOT / "examples" / "wikigold")
    args = p.parse_args()
    docs = read_documents(args.src / "wikigold.conll.txt", encoding="iob1")
    order = list(range(len(docs)))
    random.Random(SEED).shuffle(order)
    n_train = round(FRACTIONS["train"] * len(docs))
    n_dev = round(FRACTIONS["dev"] * len(docs))
    splits = {
        "train": sorted(order[:n_train]),
        "dev": sorted(order[n_train : n_train + n_dev]),
        "test": sorted(order[n_train + n_dev :]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    sentence_ids = {}
    j = 0
    for d, doc in enumerate(docs):
        for ex in doc:
            sentence_ids[id(ex)] = (d, j)
            j += 1
    for name, doc_ids in splits.items():
        examples = [ex for d in doc_ids for ex in docs[d]]
        records = []
        for ex, rec in zip(examples, examples_to_tasks(examples)):
            d, j = sentence_ids[id(ex)]
            rec["meta"] = {"source": "wikigold", "document": d, "sentence": j}
            records.append(rec)
        srsly.write_jsonl(args.out / f"{name}.jsonl", records)
        n_ent = sum(len(ex.accepted) for ex in examples)
        print(f"{name}: {len(doc_ids)} documents, {len(examples)} sentences, {n_ent} entities")
        if name == "train":
            tasks = list(simulate_teach(examples, seed=0, source="wikigold/train"))
            srsly.write_jsonl(args.out / "train_teach.jsonl", tasks)
            answers = [t["answer"] for t in tasks]
            print(f"train_teach: {len(tasks)} tasks, " + ", ".join(f"{a} {answers.count(a)}" for a in ("accept", "reject", "ignore")))
    shutil.copyfile(args.src / "LICENSE", args.out / "LICENSE")


if __name__ == "__main__":
    main()
