"""``python -m sparse_ner.simulate --config configs/simulate_conll.yaml [--answers N] [--strategies ...]``.

Parses, calls :func:`sparse_ner.loop.simulate.simulate` (the annotation loop against gold answers,
one learning curve per question-selection strategy) and prints the last point of each curve.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sparse_ner.loop.simulate import STRATEGIES


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sparse_ner.simulate",
                                description="Simulate the annotation loop against gold answers and compare "
                                            "question-selection strategies.")  # fmt: skip
    p.add_argument("--config", help="YAML config (keys: see sparse_ner.loop.simulate.SimulationConfig)")
    p.add_argument("--answers", type=int, help="answers per strategy")
    p.add_argument("--strategies", nargs="+", choices=STRATEGIES)
    p.add_argument("--eval-every", type=int, dest="eval_every")
    p.add_argument("--dev-limit", type=int, dest="dev_limit", help="dev sentences for the periodic F1 (0: all)")
    p.add_argument("--threads", type=int, help="torch threads")
    p.add_argument("--seed", type=int)
    p.add_argument("--output", help="output folder")
    args = vars(p.parse_args(argv))

    from sparse_ner.loop.simulate import load_config, simulate

    try:
        cfg = load_config(args.pop("config"), args)
    except ValueError as err:
        p.error(str(err))
    rows = simulate(cfg)
    for strategy in cfg["strategies"]:
        last = [r for r in rows if r["strategy"] == strategy][-1]
        print(f"{strategy:<12} answers={last['answers']:>5} accepts={last['accepts']:>5} f1={last['f1']:.4f}")
    print(f"wrote {Path(cfg['output']) / 'curves.csv'} and curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
