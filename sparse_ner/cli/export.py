"""``sparse-ner export CHECKPOINT OUT [--force]``: the model folder of a training checkpoint (best or last).

Parses and calls :func:`sparse_ner.training.checkpoint.export_checkpoint`: the same folder training
exports (``tagger.json``, weights, ``encoder/``, ``config.yaml``), written beside ``OUT`` and renamed
into place; an existing non-empty ``OUT`` is refused unless ``--force``. ``--o-bias B`` sets the
prediction-time ``O`` bias (by default the one training tuned for the best checkpoint).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sparse-ner export",
                                description="Make a model folder (for predict, evaluate, sparse_ner.load) from a "
                                            "training checkpoint, e.g. runs/NAME/version_0/checkpoints/last.ckpt.")  # fmt: skip
    p.add_argument("checkpoint", help="a .ckpt file written by sparse-ner train")
    p.add_argument("output", help="the model folder to write")
    p.add_argument("--force", action="store_true", help="replace OUT when it exists and is not empty")
    p.add_argument("--o-bias", type=float, metavar="B",
                   help="the prediction-time O bias (default: the one training tuned for the best checkpoint, "
                        "else the one it trained with)")  # fmt: skip
    args = p.parse_args(argv)

    from sparse_ner.training.checkpoint import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.output, force=args.force, o_bias=args.o_bias)
    print(f"exported model: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
