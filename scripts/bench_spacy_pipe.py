"""Throughput of the spaCy pipeline (``nlp.pipe``) against ``sparse_ner.predict`` on the same texts (issue 15).

    OMP_NUM_THREADS=1 python scripts/bench_spacy_pipe.py --threads 1
    python scripts/bench_spacy_pipe.py --model runs/.../model --texts examples/wikigold/test.jsonl

The model is ``--model`` (an exported folder) or, by default, the quickstart's small encoder
(``configs/wikigold_quickstart.yaml``: word_dim 64, hidden 128) fitted for ``--steps`` Adam steps on the
complete WikiGold train file (``--encoder minilm`` for the packaged MiniLM). Both sides get the raw
``text`` of each line of ``--texts`` and tokenize it themselves (``predict``: our tokenizer and the
task dicts it writes; ``nlp.pipe``: spaCy's tokenizer, ``doc.ents`` and the scored ``doc.spans``),
with the same batch size. Rounds alternate between the two; the median texts/second is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def fitted_tagger(encoder: str, train: Path, steps: int):  # -> Tagger
    from sparse_ner.core.tagger import TaggerConfig
    from sparse_ner.data.prodigy import read_examples

    torch.manual_seed(0)
    examples = read_examples(train, complete=True)
    options = {"min_count": 1, "word_dim": 64, "hidden": 128} if encoder == "small" else {}
    tagger = TaggerConfig(encoder=encoder, encoder_options=options).build(
        sorted({s.label for ex in examples for s in ex.accepted}), [ex.words for ex in examples])
    optimizer = torch.optim.Adam(tagger.parameters(), lr=3e-3 if encoder == "small" else 5e-5)
    tagger.train()
    for step in range(steps):
        batch = [examples[(step * 16 + i) % len(examples)] for i in range(16)]
        optimizer.zero_grad()
        tagger.loss(tagger.make_batch(batch)).backward()
        optimizer.step()
    return tagger.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="an exported model folder (default: fit one, see above)")
    parser.add_argument("--encoder", default="small", help="encoder of the fitted model: small or minilm")
    parser.add_argument("--train", type=Path, default=ROOT / "examples" / "wikigold" / "train.jsonl")
    parser.add_argument("--steps", type=int, default=150, help="Adam steps of the fitted model")
    parser.add_argument("--texts", type=Path, default=ROOT / "examples" / "wikigold" / "test.jsonl")
    parser.add_argument("--limit", type=int, default=0, help="use the first N texts (0: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from sparse_ner.core.export import load
    from sparse_ner.core.predict import predict_tasks
    from sparse_ner.integrations.spacy import to_spacy

    tagger = load(args.model) if args.model else fitted_tagger(args.encoder, args.train, args.steps)
    texts = [json.loads(line)["text"] for line in args.texts.read_text(encoding="utf8").splitlines() if line.strip()]
    texts = texts[: args.limit] if args.limit else texts
    nlp = to_spacy(tagger, batch_size=args.batch_size)

    def run_predict() -> int:
        return sum(len(t["spans"]) for t in predict_tasks(tagger, ({"text": x} for x in texts), args.batch_size))

    def run_pipe() -> int:
        return sum(len(doc.ents) for doc in nlp.pipe(texts, batch_size=args.batch_size))

    times: dict[str, list[float]] = {"predict": [], "nlp.pipe": []}
    counts = {"predict": run_predict(), "nlp.pipe": run_pipe()}  # warm-up, and the entity counts
    for _ in range(args.rounds):
        for name, fn in (("predict", run_predict), ("nlp.pipe", run_pipe)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    n_tokens = sum(len(doc) for doc in nlp.tokenizer.pipe(texts))
    print(f"{len(texts)} texts, {n_tokens} spaCy tokens, batch size {args.batch_size}, {args.threads} thread(s), "
          f"{args.rounds} rounds; encoder {tagger.encoder.config().get('type')}")  # fmt: skip
    base = statistics.median(times["predict"])
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"{name:<10} {len(texts) / median:9.1f} texts/s  (median {median:.3f} s, {counts[name]} entities)"
              f"  x predict: {base / median:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
