"""String <-> id vocabularies for the small encoder, saved as JSON (words may hold any char)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

PAD = "<pad>"
UNK = "<unk>"
PAD_ID = 0
UNK_ID = 1


class Vocab:
    """An ordered vocabulary whose first two entries are ``PAD`` (id 0) and ``UNK`` (id 1)."""

    def __init__(self, items: Sequence[str]):
        items = list(items)
        if items[:2] != [PAD, UNK]:
            items = [PAD, UNK] + [s for s in items if s not in (PAD, UNK)]
        self.itos: list[str] = items
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(items)}
        if len(self.stoi) != len(items):
            raise ValueError("vocabulary has duplicate entries")

    @classmethod
    def build(
        cls, items: Iterable[str], min_count: int = 1, max_size: int | None = None
    ) -> "Vocab":
        """Keep items seen at least ``min_count`` times, most frequent first (ties: first seen)."""
        counts = Counter(items)
        kept = [s for s, c in counts.most_common() if c >= min_count and s not in (PAD, UNK)]
        if max_size is not None:
            kept = kept[: max(0, max_size - 2)]
        return cls(kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, item: str) -> bool:
        return item in self.stoi

    def id(self, item: str) -> int:
        return self.stoi.get(item, UNK_ID)

    def ids(self, items: Iterable[str]) -> list[int]:
        get = self.stoi.get
        return [get(s, UNK_ID) for s in items]


def save_vocabs(path: Path, **vocabs: Vocab) -> None:
    """Write named vocabularies to one JSON file: ``{"words": [...], "chars": [...]}``."""
    Path(path).write_text(
        json.dumps({name: v.itos for name, v in vocabs.items()}, ensure_ascii=False), "utf-8"
    )


def load_vocabs(path: Path) -> dict[str, Vocab]:
    data = json.loads(Path(path).read_text("utf-8"))
    return {name: Vocab(items) for name, items in data.items()}
