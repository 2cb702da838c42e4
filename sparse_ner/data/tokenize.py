"""The default tokenizer, used when a record has no ``tokens``.

Rules, in order of precedence at each position:

1. Whitespace separates tokens and is never part of one.
2. A CJK character (Han, Hiragana, Katakana, Hangul, CJK symbols and punctuation, full-width forms)
   is a token by itself: one token per character, as in character-level Chinese NER corpora.
3. A word is a run of letters, digits and combining marks (not CJK), which may contain single
   internal apostrophes or hyphens between such runs: ``don't``, ``PMC-Sierra``, ``O'Neil`` are one
   token each. (CoNLL-style ``'s`` splitting is *not* done: keep the corpus tokens when you have them.)
4. Any other character (punctuation, symbols, ``_``) is a token by itself.

``Token.ws`` is true when the character right after the token is whitespace. Offsets index the
original text exactly: ``text[tok.start:tok.end] == tok.text``.
"""

from __future__ import annotations

import re

from sparse_ner.data.example import Token

CJK_RANGES = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u3000-\u303f"  # CJK symbols and punctuation
    "\u3040-\u309f"  # Hiragana
    "\u30a0-\u30ff"  # Katakana
    "\u3100-\u31ff"  # Bopomofo, Hangul compatibility Jamo, Kanbun, Katakana ext.
    "\u3400-\u4dbf"  # CJK ext. A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\ufe30-\ufe4f"  # CJK compatibility forms
    "\uff00-\uffef"  # half-width and full-width forms
    "\U00020000-\U0003134f"  # CJK ext. B-G
)
_CJK = f"[{CJK_RANGES}]"
_WORD_CHAR = rf"(?:(?!{_CJK})[^\W_]|[\u0300-\u036f\u0900-\u097f])"
_WORD = rf"{_WORD_CHAR}+(?:['\u2019\-]{_WORD_CHAR}+)*"
TOKEN_RE = re.compile(rf"{_CJK}|{_WORD}|\S")
CJK_RE = re.compile(_CJK)


def is_cjk(char: str) -> bool:
    """Whether a single character is in one of the CJK ranges above."""
    return CJK_RE.fullmatch(char) is not None


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into :class:`Token` objects with exact character offsets."""
    tokens = []
    for m in TOKEN_RE.finditer(text):
        end = m.end()
        tokens.append(Token(m.group(), m.start(), end, ws=end < len(text) and text[end].isspace()))
    return tokens
