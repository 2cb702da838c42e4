"""The annotation loop's options and their defaults, in one place.

:class:`~sparse_ner.loop.online.OnlineTagger` takes any of these as keyword options (the Prodigy
recipes run these defaults); :class:`~sparse_ner.loop.learner.Learner` and
:class:`~sparse_ner.loop.suggest.Suggester` take their share with the same defaults. Values measured
in BENCHMARKS.md ("The annotation loop on CPU").
"""

from __future__ import annotations

from typing import Any

# A transformer in the loop: its top TRANSFORMER_LAYERS layers train at TRANSFORMER_LR, and update()
# replays TRANSFORMER_REPLAY earlier texts (fewer than the small encoder's 10, so that update() of
# 4 layers stays within its latency budget; the idle steps replay the rest). Chosen on the CoNLL-2003
# loop simulation (BENCHMARKS.md, "The loop with MiniLM-L6"). TRANSFORMER_LR repeats
# sparse_ner.core.encoders.PRETRAINED_LR (offline training's default) so that this module stays free of
# torch; tests/loop/test_learner.py checks that the two agree.
TRANSFORMER_LR, TRANSFORMER_LAYERS, TRANSFORMER_REPLAY, SMALL_REPLAY = 1e-4, 4, 5, 10
# The loop predicts and exports an exponential moving average of its trained weights (decay AVERAGE per
# optimizer step); the steps and the stream's questions use the raw weights (BENCHMARKS.md, "Averaged
# weights in the loop": MiniLM-L6 +0.008 dev F1 at 500 answers, the small encoder +0.008 at 2,000).
AVERAGE = 0.97
# A new transformer model in the loop gets a learned embedding of each word's capitalization shape of
# this size beside its vectors (loop.online.cold_tagger; BENCHMARKS.md, "Capitalization shape beside MiniLM-L6")
SHAPE_DIM = 16

# A new model in the loop (loop.online.cold_tagger): the head options of sparse_ner.core.tagger.TaggerConfig
# that the loop simulations run, for every option the caller leaves out: the entity-ratio penalty on
# (a share ENTITY_RATIO of words inside entities, +- 0.05; the output layer also starts biased to it) and the
# head's dropout per encoder (BENCHMARKS.md, "The annotation loop on CPU"). TaggerConfig's own defaults
# (no penalty, dropout 0.2) are offline training's, where --model.entity_ratio is set in the config.
ENTITY_RATIO = 0.15
COLD_TAGGER: dict[str, Any] = {"entity_ratio": ENTITY_RATIO, "ratio_margin": 0.05}
SMALL_DROPOUT, TRANSFORMER_DROPOUT = 0.2, 0.1

# A new model with patterns first learns their matches in the stream's first WARM_TEXTS texts, taken as binary
# accepts, for WARM_STEPS learner steps before the first question (OnlineTagger.warm_start; BENCHMARKS.md,
# "Warm start from the patterns"): a transformer (the small encoder: SMALL_WARM_STEPS).
WARM_TEXTS, WARM_STEPS, SMALL_WARM_STEPS = 1000, 20, 0

DEFAULTS: dict[str, Any] = {
    "lr": 2e-3,  # head (and small encoder) learning rate
    "encoder_lr": None,  # None: lr for the small encoder, 1e-4 for a transformer
    "train_layers": TRANSFORMER_LAYERS,  # transformers: fine-tune only the top N layers in the loop (None: all)
    "bf16": None,  # run the encoder under bfloat16 autocast (None: transformers, where the CPU/GPU has bf16)
    "steps": None,  # optimizer steps per update() call; None: 1 while the idle-training thread runs, else 2
    "replay": None,  # earlier texts mixed into each update() step (None: 10 small encoder, 5 transformer)
    "steps_texts": 20,  # texts per consolidate() step (idle-time training on the answer memory)
    "idle_steps": 9,  # consolidate() steps the idle-training thread takes after each update()
    "batch_size": 64,  # texts scored at once
    "threshold": 0.1,  # start-tag marginal for a span to be suggested
    "max_len": 8,  # longest suggested span, in tokens
    "max_suggestions": 5,  # model suggestions per text (most probable start first), besides patterns
    "pattern_warmup": 1000,  # answers over which pattern scores move from 0.5 to the model's (BENCHMARKS.md)
    "pattern_patience": None,  # answers to one pattern's matches after which they get the model's score (None: off)
    "min_pattern_precision": 0.2,
    "warm_steps": None,  # a new model's steps on the patterns' matches in the first texts (warm_start); None: WARM_STEPS
    "average": AVERAGE,  # EMA decay of the weights that predict and are saved (0: off, the raw weights)
    "grad_clip": 5.0,
    "calibrate": True,  # stream scores through a Platt calibration fitted to the answers (loop.calibration)
    "calibration_window": 500,  # answered model suggestions it is fitted to (the most recent)
    "seed": 0,
}

__all__ = ["AVERAGE", "COLD_TAGGER", "DEFAULTS", "ENTITY_RATIO", "SHAPE_DIM", "SMALL_DROPOUT", "SMALL_REPLAY",
           "TRANSFORMER_DROPOUT", "TRANSFORMER_LAYERS", "TRANSFORMER_LR", "TRANSFORMER_REPLAY", "SMALL_WARM_STEPS",
           "WARM_STEPS", "WARM_TEXTS"]
