"""Training in the annotation loop: the optimizer and its steps on the texts of an answer memory.

:meth:`Learner.update` trains on the texts just answered plus a fresh random ``replay`` sample of
earlier texts at each step, so the model neither forgets nor overfits one batch; a reject teaches
through the exact partial-label loss (the rejected span is removed from the consistent set, nothing
else is assumed). :meth:`Learner.consolidate` trains on random samples of every answered text, for
the annotator's idle time. A transformer fine-tunes only its top ``train_layers`` layers and runs
under bfloat16 autocast where that is fast here (:func:`bf16_supported`); the CRF stays in float32.

With ``average`` (a decay; 0.97 by default, 0: off), the learner also keeps an exponential moving
average of the trainable weights, updated after every step (``torch.optim.swa_utils``'s EMA update).
:meth:`Learner.averaged_weights` puts it into the tagger while tasks are pre-annotated or the
model is evaluated or exported, and the raw weights back afterwards: the steps always continue from
the raw weights, and the stream's questions are scored with them.
"""

from __future__ import annotations

import contextlib
import random
import threading
from typing import Any, Callable, Iterator

import torch

from sparse_ner.core.tagger import Tagger
from sparse_ner.data.example import Example
from sparse_ner.loop.defaults import AVERAGE, DEFAULTS, SMALL_REPLAY, TRANSFORMER_REPLAY
from sparse_ner.loop.memory import AnswerMemory


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``), or None where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), None)
    except OSError:
        return None


def bf16_supported(device: torch.device, flags: Callable[[], set[str] | None] = cpu_flags) -> bool:
    """Whether bfloat16 matrix products are fast here: bf16 on the GPU; on CPU, oneDNN bf16 with
    native instructions (AVX512-BF16 or AMX; ``flags()`` gives the CPU's flags, None: unknown).
    oneDNN also reports bf16 on AVX512 CPUs without them, where it emulates bf16 and is slower
    than float32 (see BENCHMARKS.md)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        onednn = device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    found = flags()
    return onednn and (found is None or bool(found & {"avx512_bf16", "amx_bf16"}))


def make_optimizer(tagger: Tagger, lr: float, encoder_lr: float | None = None) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters: the encoder at ``encoder_lr`` (None: ``lr`` for the
    small encoder, :data:`TRANSFORMER_LR` for a transformer: :func:`~sparse_ner.core.encoders.encoder_lr`),
    the rest at ``lr``; fused (faster steps on CPU)."""
    from sparse_ner.core.encoders import encoder_lr as default_encoder_lr

    encoder_lr = default_encoder_lr(tagger.encoder, lr, encoder_lr)
    enc_params = [p for p in tagger.encoder.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in enc_params}
    head = [p for p in tagger.parameters() if p.requires_grad and id(p) not in enc_ids]
    return torch.optim.AdamW([{"params": enc_params, "lr": encoder_lr}, {"params": head, "lr": lr}],
                             weight_decay=0.0, fused=True)  # fmt: skip


class Learner:
    """Optimizer steps of ``tagger`` on the texts of ``memory`` (module docstring).

    Each step holds ``lock`` (shared with whatever else reads or writes the parameters)."""

    def __init__(self, tagger: Tagger, memory: AnswerMemory, lock: threading.RLock | None = None, *,
                 lr: float = DEFAULTS["lr"], encoder_lr: float | None = DEFAULTS["encoder_lr"],
                 train_layers: int | None = DEFAULTS["train_layers"], bf16: bool | None = DEFAULTS["bf16"],
                 steps: int | None = DEFAULTS["steps"], replay: int | None = DEFAULTS["replay"],
                 steps_texts: int = DEFAULTS["steps_texts"], grad_clip: float = DEFAULTS["grad_clip"],
                 average: float | None = DEFAULTS["average"], seed: int = DEFAULTS["seed"]):  # fmt: skip
        from sparse_ner.core.encoders import TransformerEncoder

        self.tagger, self.memory = tagger, memory
        self.lock = lock if lock is not None else threading.RLock()
        self.transformer = transformer = isinstance(tagger.encoder, TransformerEncoder)
        if transformer:  # cheap updates of its top layers
            tagger.encoder.set_trainable(train_layers)
        self.optimizer = make_optimizer(tagger, lr, encoder_lr)
        self.bf16 = bf16 if bf16 is not None else transformer and bf16_supported(tagger.device)
        if replay is None:
            replay = TRANSFORMER_REPLAY if transformer else SMALL_REPLAY
        self.steps, self.replay, self.steps_texts, self.grad_clip = steps, replay, steps_texts, grad_clip
        if average is None:
            average = AVERAGE
        if not 0.0 <= average < 1.0:
            raise ValueError(f"average must be a decay in [0, 1) (0: off), got {average}")
        self.average = float(average)
        self.averaged: dict[str, torch.Tensor] = {}  # parameter name -> its moving average (empty: none yet)
        self.rng = random.Random(seed)  # replay and consolidation samples

    def trainable(self) -> dict[str, torch.nn.Parameter]:
        """The parameters the steps train, by name."""
        return {n: p for n, p in self.tagger.named_parameters() if p.requires_grad}

    def _update_average(self) -> None:
        """Move the averaged weights towards the raw ones after a step (a parameter's first step, or its
        first since it became trainable, starts its average at its weights)."""
        if not self.average:
            return
        from torch.optim.swa_utils import get_ema_multi_avg_fn

        params = self.trainable()
        with torch.no_grad():
            for n in set(self.averaged) - set(params):
                del self.averaged[n]
            going = [n for n in params if n in self.averaged]
            self.averaged.update({n: p.detach().clone() for n, p in params.items() if n not in self.averaged})
            if going:
                update = get_ema_multi_avg_fn(self.average)
                update([self.averaged[n] for n in going], [params[n].detach() for n in going], 0)

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[dict[str, torch.Tensor]]:
        """The averaged weights in the tagger while the block runs, under ``lock``; yields the raw
        weights set aside (name -> tensor; empty without averaging) and puts them back afterwards."""
        with self.lock:
            params = self.trainable()
            names = [n for n in self.averaged if n in params]
            if not names:
                yield {}
                return
            with torch.no_grad():
                raw = {n: params[n].detach().clone() for n in names}
                for n in names:
                    params[n].copy_(self.averaged[n])
            try:
                yield raw
            finally:
                with torch.no_grad():
                    for n in names:
                        params[n].copy_(raw[n])

    def restore(self, raw: dict[str, torch.Tensor]) -> None:
        """After loading a saved model (its averaged weights): take them as the average and put the
        saved ``raw`` weights (what :meth:`averaged_weights` yielded when it was saved) back into the
        tagger, for the parameters trainable now (the others keep the averaged values)."""
        named = dict(self.tagger.named_parameters())
        unknown = sorted(set(raw) - set(named))
        if unknown:
            raise ValueError(f"saved raw weights for parameters the model does not have: {unknown[:3]}")
        params = self.trainable()
        with self.lock, torch.no_grad():
            if self.average:
                self.averaged = {n: params[n].detach().clone() for n in raw if n in params}
            for n in raw:
                if n in params:
                    params[n].copy_(raw[n])

    def autocast(self) -> Any:
        """bfloat16 autocast of the encoder when ``bf16`` (the CRF stays in float32)."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.tagger.device.type, dtype=torch.bfloat16)

    def steps_per_update(self, idle_training: bool) -> int:
        """``steps``, or when it is None, 1 while an idle-training thread runs (its steps after each
        update do the rest of the learning) and 2 otherwise (see BENCHMARKS.md)."""
        if self.steps is not None:
            return int(self.steps)
        return 1 if idle_training else 2

    def step(self, keys: list[int]) -> float:
        """One optimizer step on the answered texts ``keys`` of the memory; returns its loss."""
        memory = self.memory
        return self._step([memory.examples[k] for k in keys], [memory.features[k] for k in keys])

    def pretrain(self, examples: list[Example], steps: int, progress: bool | str = False) -> float:
        """``steps`` steps, each on ``steps_texts`` of ``examples`` (not answers: e.g. pattern matches taken
        as binary accepts, :meth:`~sparse_ner.loop.online.OnlineTagger.warm_start`) drawn afresh; then the
        optimizer's moments and the weight average start again from the weights these steps left, as for a
        model that was loaded with them. ``progress``: a bar over the steps on stderr
        (:func:`~sparse_ner.core.progress.progress_bar`). Returns the mean loss (0.0 without examples or steps)."""
        from sparse_ner.core.progress import progress_bar

        if not examples or steps < 1:
            return 0.0
        features = [self.tagger.encoder.featurize(ex.words) for ex in examples]
        losses = []
        with progress_bar(steps, progress, "warm start", unit=" steps") as bar:
            for _ in range(steps):
                idx = self.rng.sample(range(len(examples)), min(self.steps_texts, len(examples)))
                losses.append(self._step([examples[i] for i in idx], [features[i] for i in idx]))
                bar.update()
        with self.lock:
            self.optimizer.state.clear()
            self.averaged = {}
        return sum(losses) / len(losses)

    def _step(self, examples: list[Example], features: list[dict]) -> float:
        tagger = self.tagger
        with self.lock:
            tagger.train()
            try:
                batch = tagger.make_batch(examples, features)
                tagger.to_device(batch)
                with self.autocast():
                    loss = tagger.loss(batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(tagger.parameters(), self.grad_clip)
                self.optimizer.step()
                self._update_average()
            finally:
                tagger.eval()
        return float(loss.detach())

    def update(self, keys: list[int], steps: int) -> float:
        """``steps`` steps, each on the texts ``keys`` plus ``replay`` other answered texts drawn
        afresh; returns the mean loss (0.0 without keys)."""
        if not keys or steps < 1:
            return 0.0
        fresh = set(keys)
        earlier = [k for k in self.memory.examples if k not in fresh]
        losses = []
        for _ in range(steps):
            sample = self.rng.sample(earlier, min(self.replay, len(earlier)))
            losses.append(self.step(keys + sample))
        return sum(losses) / len(losses)

    def consolidate(self, steps: int = 1) -> float:
        """``steps`` steps, each on ``steps_texts`` texts drawn from every answered text; returns the
        mean loss (0.0 when nothing is answered). Holds the lock one step at a time, so scoring and
        updates wait for one step at most."""
        losses = []
        for _ in range(steps):
            with self.lock:
                keys = list(self.memory.examples)
                if not keys:
                    break
                losses.append(self.step(self.rng.sample(keys, min(self.steps_texts, len(keys)))))
        return sum(losses) / len(losses) if losses else 0.0


__all__ = ["Learner", "bf16_supported", "cpu_flags", "make_optimizer"]
