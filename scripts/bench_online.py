"""Benchmark the annotation loop on CPU: update() latency and stream scoring speed.

    python scripts/bench_online.py [--encoders small minilm] [--threads 1] [--steps 1] [--bf16 auto|on|off]

For each encoder a cold :class:`OnlineTagger` (CoNLL-2003 labels; the small encoder's vocabulary
from the CoNLL train texts) first learns from ``--warmup`` answers of the fixed simulated ``ner.teach``
file (so update() has earlier answers to replay), then

- ``update()`` is timed on ``--updates`` consecutive batches of 10 answers (p50 / p95 / max ms), with
  ``--steps`` optimizer steps each (1: what the recipes run beside their idle-training thread; 2: the
  default without one);
- scoring: the CoNLL-2003 test sentences (``--score-limit`` of them) are streamed through
  ``online(stream)`` and every ``(score, task)`` is consumed (sentences/s, suggestions/sentence).

``--spacy``: in the same process, before each encoder's scoring, spaCy's default CNN NER (a blank
English pipeline with ``nlp.add_pipe("ner")``: HashEmbedCNN tok2vec and the transition-based
parser, the model ``spacy init config --pipeline ner`` gives; initialized with the four labels,
untrained, which does not change its speed) tags the same sentences from their words
(``Doc(words=...)``, so neither side tokenizes), in batches of 64; rounds alternate with ours and
the medians of process CPU time are compared (``spacy_sent_per_cpu_s``, ``x_spacy``), and so is each
round of ours with the spaCy round just before it (``x_spacy_paired``: the median of those ratios, less
moved by a shared machine that runs slower for a while).

``--device cuda`` runs the model on a GPU (the loop's update() and scoring there; ``--no-patterns``
where spaCy is not installed, as on the GPU machine of ``scripts/gpu_session.sh``).

Wall-clock and process CPU time are both reported: on shared cores the wall clock includes waiting
for other processes (the 1-minute load average is printed with each row). Data are read from
../shared/data (never copied). Prints a Markdown table and one JSON line per row.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
LABELS = ["LOC", "MISC", "ORG", "PER"]


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def bench(encoder: str, args: argparse.Namespace) -> dict:
    from sparse_ner.data.io import read_jsonl
    from sparse_ner.loop.online import OnlineTagger
    from sparse_ner.loop.patterns import read_patterns
    from sparse_ner.loop.simulate import as_task, read_gold

    torch.manual_seed(0)
    test = [ex for ex in read_gold(args.data / "conll2003" / "test.txt") if ex.tokens][: args.score_limit]
    patterns = [] if args.no_patterns else read_patterns(ROOT / "examples" / "patterns_conll.jsonl", LABELS)
    texts = None
    if encoder == "small":  # the small encoder's vocabulary comes from the training texts
        texts = [as_task(ex, i) for i, ex in enumerate(read_gold(args.data / "conll2003" / "train.txt"))]
    options = {"steps": args.steps} if args.steps else {}
    if args.bf16 != "auto":
        options["bf16"] = args.bf16 == "on"
    for item in args.option:  # loop options (sparse_ner.loop.online.DEFAULTS), YAML values
        key, _, value = item.partition("=")
        options[key] = yaml.safe_load(value)
    encoder_options = {k: yaml.safe_load(v) for k, _, v in (item.partition("=") for item in args.encoder_option)}
    tagger = {"encoder": encoder, "entity_ratio": 0.15, **({"encoder_options": encoder_options} if encoder_options else {})}
    online = OnlineTagger.from_config(LABELS, tagger, texts, patterns, 0.15, device=args.device, **options)
    answers = (r for _, r in read_jsonl(args.data / "teach" / "conll2003_train_teach.jsonl"))
    warm = list(itertools.islice(answers, args.warmup))
    for i in range(0, len(warm), 10):
        online.update(warm[i : i + 10])
    times, cpu = [], []
    for _ in range(args.updates):
        batch = list(itertools.islice(answers, 10))
        t0, c0 = time.perf_counter(), time.process_time()
        online.update(batch)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    spacy_rate = spacy_ner_rate(test, args.spacy) if args.spacy else None
    ms = [t * 1000 for t in times]
    cpu_ms = [t * 1000 for t in cpu]
    stream = [as_task(ex, i) for i, ex in enumerate(test)]
    list(online(stream[:64]))  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    n_tasks = sum(1 for _ in online(stream))
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    ours_cpu = [cpu_seconds]
    for _ in range(max(0, args.spacy - 1)):  # more rounds of ours, alternating with spaCy's
        spacy_rate["cpu_s"].extend(spacy_ner_rate(test, 1)["cpu_s"])
        c0 = time.process_time()
        sum(1 for _ in online(stream))
        ours_cpu.append(time.process_time() - c0)
    extra = {}
    if spacy_rate:
        spacy_cpu = statistics.median(spacy_rate["cpu_s"])
        # each round of ours against the spaCy round just before it: the pair shares the machine's state
        paired = [s / o for s, o in zip(spacy_rate["cpu_s"][args.spacy - 1 :], ours_cpu)]
        extra = {"spacy_sent_per_cpu_s": round(len(stream) / spacy_cpu, 1),
                 "ours_sent_per_cpu_s_median": round(len(stream) / statistics.median(ours_cpu), 1),
                 "x_spacy": round(spacy_cpu / statistics.median(ours_cpu), 2), "rounds": len(ours_cpu),
                 "x_spacy_paired": round(statistics.median(paired), 2)}  # fmt: skip
    return {
        "encoder": encoder, "device": str(online.tagger.device), "patterns": len(patterns), "encoder_options": encoder_options, "options": {k: v for k, v in options.items() if k not in ("steps", "bf16")}, "steps": online.update_steps, "bf16": bool(online.bf16), "threads": torch.get_num_threads(), "update_p50_ms": round(statistics.median(ms), 1),
        "update_p95_ms": round(percentile(ms, 0.95), 1), "update_max_ms": round(max(ms), 1),
        "updates": len(ms), "score_sentences": len(stream), "score_sent_per_s": round(len(stream) / seconds, 1),
        "update_cpu_p50_ms": round(statistics.median(cpu_ms), 1), "update_cpu_p95_ms": round(percentile(cpu_ms, 0.95), 1),
        "score_sent_per_cpu_s": round(len(stream) / cpu_seconds, 1),
        "suggestions_per_sentence": round(n_tasks / len(stream), 2), "load_avg_1m": round(os.getloadavg()[0], 2),
        **extra,
    }  # fmt: skip


_SPACY: dict = {}


def spacy_ner_rate(test: list, rounds: int) -> dict:
    """Process CPU seconds of spaCy's default CNN NER over ``test`` (docs from words), ``rounds`` times."""
    import spacy
    from spacy.tokens import Doc

    if "nlp" not in _SPACY:
        nlp = spacy.blank("en")
        ner = nlp.add_pipe("ner")
        for label in LABELS:
            ner.add_label(label)
        nlp.initialize()
        _SPACY["nlp"] = nlp
        list(ner.pipe([Doc(nlp.vocab, words=ex.words) for ex in test[:64]]))  # warm-up
    nlp = _SPACY["nlp"]
    ner = nlp.get_pipe("ner")
    cpu = []
    for _ in range(rounds):
        docs = [Doc(nlp.vocab, words=ex.words) for ex in test]
        c0 = time.process_time()
        n = sum(len(doc.ents) >= 0 for doc in ner.pipe(docs, batch_size=64))
        cpu.append(time.process_time() - c0)
        assert n == len(test)
    return {"cpu_s": cpu}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encoders", nargs="+", default=["small", "minilm"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps per update() (default: the OnlineTagger default without an idle-training "
                        "thread, 2; the recipes run 1 step plus idle training)")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                   help="bfloat16 autocast of the encoder (auto: the OnlineTagger default, on for transformers where "
                        "oneDNN reports bf16 support)")
    p.add_argument("--warmup", type=int, default=500, help="answers learned before timing")
    p.add_argument("--updates", type=int, default=50, help="timed update() calls of 10 answers")
    p.add_argument("--option", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                   help="OnlineTagger options, e.g. train_layers=4 encoder_lr=1e-4")
    p.add_argument("--encoder-option", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                   help="encoder options of the cold model (YAML values), e.g. kind=cnn for the small encoder")
    p.add_argument("--spacy", type=int, default=0, metavar="ROUNDS",
                   help="also time spaCy's default CNN NER on the same sentences, ROUNDS rounds alternating with ours")
    p.add_argument("--score-limit", type=int, default=None, help="test sentences to score (default: all)")
    p.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--device", default="cpu", help="where the model runs (cuda: scripts/gpu_session.sh)")
    p.add_argument("--no-patterns", action="store_true",
                   help="no match patterns (they need spaCy, which the GPU machine lacks)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for encoder in args.encoders:
        row = bench(encoder, args)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| encoder | steps | threads | update p50 ms | update p95 ms | max ms | update CPU p50 / p95 ms | scoring sent/s "
          "| scoring sent per CPU-s | suggestions/sent | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['encoder']}{' (bf16)' if r['bf16'] else ''}{' on ' + r['device'] if r['device'] != 'cpu' else ''} | {r['steps']} | {r['threads']} | {r['update_p50_ms']} | {r['update_p95_ms']} | {r['update_max_ms']} "
              f"| {r['update_cpu_p50_ms']} / {r['update_cpu_p95_ms']} | {r['score_sent_per_s']} ({r['score_sentences']} sent.) "
              f"| {r['score_sent_per_cpu_s']} | {r['suggestions_per_sentence']} "
              f"| {r['load_avg_1m']} |")
    for r in rows:
        if "x_spacy" in r:
            print(f"{r['encoder']}: scoring {r['ours_sent_per_cpu_s_median']} sent per CPU-s vs spaCy's CNN NER "
                  f"{r['spacy_sent_per_cpu_s']} (median of {r['rounds']} alternating rounds): {r['x_spacy']}x; "
                  f"median of the paired rounds' ratios {r['x_spacy_paired']}x")


if __name__ == "__main__":
    main()
