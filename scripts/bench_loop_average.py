"""The loop's weight average at several decays in one simulation (BENCHMARKS.md, "Averaged weights in the loop").

    OMP_NUM_THREADS=1 python scripts/bench_loop_average.py SEED ANSWERS OUTDIR [key=value ...]
        [--decays 0.9 0.95 0.98 0.99 0.995] [--config configs/simulate_conll_minilm.yaml]

Runs ``python -m sparse_ner.simulate`` (uncertainty) on the config as the recipes run the loop, and keeps
more exponential moving averages of the trainable weights beside the learner's own (``average``, 0.97
for a transformer, off for the small encoder). The stream is scored and the steps are taken with the raw
weights, so the extra averages change nothing in the run; at each evaluation every average, and the raw
weights, tag the whole dev set, one JSON line per count in ``OUTDIR/decays_seedSEED.jsonl`` (the key of
the learner's own average is its decay, ``0.0`` when off). ``key=value`` sets simulation options
(``eval_every=500``, ``strategies=[uncertainty]``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

import sparse_ner.loop.simulate as sim
from sparse_ner.loop.learner import Learner

ROOT = Path(__file__).resolve().parents[1]


def keep_more_averages(decays: tuple[float, ...]) -> None:
    """After each step, also move one average per decay towards the raw weights (started at a parameter's
    weights after its first step, as the learner's own)."""
    own = Learner._update_average

    def update(self: Learner) -> None:
        own(self)
        params = self.trainable()
        extra = self.__dict__.setdefault("extra_averages", {d: {} for d in decays})
        with torch.no_grad():
            for decay, average in extra.items():
                for name, p in params.items():
                    if name not in average:
                        average[name] = p.detach().clone()
                    else:
                        average[name].mul_(decay).add_(p.detach(), alpha=1 - decay)

    Learner._update_average = update


def evaluate_every_average(log) -> None:
    """Each dev evaluation of the simulation scores the learner's average, each extra one and the raw weights."""
    own = sim.dev_f1

    def dev_f1(online, dev):
        learner = online.learner
        result = own(online, dev)
        row = {"answers": online.n_answers, str(learner.average): result}
        saved = learner.averaged
        try:
            for decay, average in getattr(learner, "extra_averages", {}).items():
                learner.averaged = average
                row[str(decay)] = own(online, dev)
            learner.averaged = {}  # no average: the raw weights
            row["raw"] = own(online, dev)
        finally:
            learner.averaged = saved
        print(json.dumps(row), file=log, flush=True)
        return result

    sim.dev_f1 = dev_f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seed", type=int)
    parser.add_argument("answers", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("overrides", nargs="*", help="simulation options, key=value (YAML values)")
    parser.add_argument("--decays", type=float, nargs="+", default=[0.9, 0.95, 0.98, 0.99, 0.995])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/simulate_conll_minilm.yaml")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    overrides = {"seed": args.seed, "answers": args.answers, "strategies": ["uncertainty"],
                 "output": str(args.out / f"seed{args.seed}")}  # fmt: skip
    for item in args.overrides:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    keep_more_averages(tuple(args.decays))
    with open(args.out / f"decays_seed{args.seed}.jsonl", "a") as log:
        evaluate_every_average(log)
        sim.simulate(sim.load_config(args.config, overrides))


if __name__ == "__main__":
    main()
