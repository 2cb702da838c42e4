"""The typed records every reader yields and every trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Token:
    """A token with character offsets into its text (``end`` exclusive)."""

    text: str
    start: int
    end: int
    ws: bool = True


@dataclass(frozen=True)
class Span:
    """An entity span: character offsets (``end`` exclusive) and token offsets (``token_end`` inclusive)."""

    start: int
    end: int
    token_start: int
    token_end: int
    label: str

    @property
    def key(self) -> tuple[int, int, str]:
        """``(token_start, token_end, label)``: the identity of the span for the tagger."""
        return (self.token_start, self.token_end, self.label)


@dataclass
class Example:
    """All that is known about one text: merged answers of every task sharing its ``_input_hash``.

    ``accepted`` spans are entities with exact boundaries and label. ``rejected`` spans are exact
    (start, end, label) triples that are *not* entities (the tokens may still belong to another
    entity). When ``complete`` is true every token outside ``accepted`` is ``O``; otherwise the
    unannotated tokens are unknown and the loss marginalizes over them.
    """

    text: str
    tokens: list[Token]
    accepted: list[Span] = field(default_factory=list)
    rejected: list[Span] = field(default_factory=list)
    complete: bool = False
    input_hash: int | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)  # the db-out records merged here
    prior: Any = None  # training only: a teacher's log-posteriors (n_words, K) (sparse_ner.training.teacher)

    @property
    def words(self) -> list[str]:
        return [t.text for t in self.tokens]

    def __len__(self) -> int:
        return len(self.tokens)
