"""The encoder interface: pre-tokenized words in, one vector per word out.

An encoder works in three steps, split so the first two can run in ``DataLoader`` workers:

1. ``featurize(words)``: per example, CPU, no grad; returns a picklable dict of plain lists.
2. ``collate(features)``: pads a batch into tensors; always includes ``word_mask`` ``(B, T)`` bool.
3. ``forward(batch)``: returns word vectors ``(B, T, H)``, zero at padded positions.

``T`` is the longest example of the batch in words (at least 1, so an all-empty batch still has a
shape). ``config()`` returns JSON-able constructor options tagged with ``"type"``, and
``save(folder)`` / ``load(folder, config)`` write and read the extra files needed to rebuild the
encoder (vocabularies, tokenizer, weights); :func:`sparse_ner.core.encoders.load_encoder` dispatches on
the tag.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import torch
from torch import nn


class Encoder(nn.Module):
    """Base class of word encoders; see the module docstring for the protocol."""

    kind: ClassVar[str] = ""
    output_dim: int

    def featurize(self, words: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> "Encoder":
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def encode(self, docs: Sequence[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Featurize, collate and run a batch in one call: ``(vectors (B, T, H), mask (B, T))``."""
        batch = self.collate([self.featurize(list(words)) for words in docs])
        batch = {k: v.to(self.device) for k, v in batch.items()}
        return self(batch), batch["word_mask"]


def pad_ids(seqs: Sequence[Sequence[int]], pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad integer sequences: ``(ids (B, T) long, mask (B, T) bool)`` with ``T >= 1``."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)  # (B,)
    T = max(int(lengths.max()) if len(seqs) else 0, 1)
    mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)  # (B, T)
    ids[mask] = torch.tensor(list(chain.from_iterable(seqs)), dtype=torch.long)
    return ids, mask


PADDING_SLACK = 1.25  # padded / real positions allowed in one forward pass (length_groups)


def length_groups(lengths: list[int], cap: int | None = None, slack: float = PADDING_SLACK) -> list[list[int]]:
    """Rows of a batch (transformer windows, sentences) grouped for separate forward passes, so that
    little of the work is padding: indices sorted longest first, each group padded to its first
    (longest) row, a new group started where the group's padded positions would exceed ``slack``
    times its real ones, or at ``cap`` rows (None: no cap). On CoNLL-2003 in batches of 64 sentences,
    one pass over every window padded to the longest computes 2.9x the real subwords; these groups
    about 1.2x (BENCHMARKS.md)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    real = 0
    for i in order:
        group = groups[-1] if groups else None
        if group is not None and (cap is None or len(group) < cap):
            longest = lengths[group[0]]
            if longest * (len(group) + 1) <= slack * (real + lengths[i]):
                group.append(i)
                real += lengths[i]
                continue
        groups.append([i])
        real = lengths[i]
    return groups


def by_length(run: Callable[[torch.Tensor, int], torch.Tensor], lengths: list[int], width: int,
              cap: int | None = None, device: torch.device | None = None) -> torch.Tensor:  # fmt: skip
    """A batch's rows run in groups of similar length (:func:`length_groups`, at most ``cap`` rows each):
    ``run(rows, n)`` computes ``(len(rows), n, H)`` for the rows ``rows`` (an index tensor on ``device``)
    trimmed to their longest, ``n`` positions; the result is ``(B, width, H)`` in batch order, 0 past
    each group's longest row. The same values at real positions as one pass over the whole padded batch
    when padding never reaches them (the small encoder's unpacked BiLSTM, a transformer's attention
    mask), for a fraction of the padded work (a batch of 64 CoNLL-2003 sentences is 2.5x padding in one
    pass)."""
    groups = length_groups(lengths, cap)
    if len(groups) == 1:  # one pass, rows in batch order: nothing to reorder
        n = max(lengths)
        h = run(torch.arange(len(lengths), device=device), n)  # (B, n, H)
        return nn.functional.pad(h, (0, 0, 0, width - n))  # (B, width, H)
    parts, order = [], []
    for rows in groups:
        n = lengths[rows[0]]
        h = run(torch.as_tensor(rows, device=device), n)  # (b, n, H)
        parts.append(nn.functional.pad(h, (0, 0, 0, width - n)))  # (b, width, H)
        order += rows
    return torch.cat(parts)[torch.as_tensor(order, device=device).argsort()]  # (B, width, H)
