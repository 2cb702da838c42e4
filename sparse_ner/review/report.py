"""What a reviewer looks at: a terminal summary and a self-contained HTML report of a review.

Both take the :class:`~sparse_ner.review.Review` s ranked hardest first. The comparison of the
annotation with the model's prediction is entity-level:

- each annotated (accepted) span is paired with the predicted span that overlaps it most; the pair
  counts in the confusion table as ``annotated label -> predicted label`` (``O`` when nothing
  overlaps), and as a *boundary* disagreement when the labels agree but the offsets do not;
- a predicted span that overlaps no annotated span counts as ``O -> predicted label`` when the
  annotation is complete, or when it is a span the annotator rejected; on a binary (sparse)
  annotation the rest of the text is unknown, so other predictions are not counted.

The HTML report groups the disagreements by kind (:data:`GROUPS`: a label, a boundary, an entity
the annotation may be missing, an annotated entity that may be spurious) and by
``annotated -> predicted`` pair, the most frequent first (:func:`patterns`), so a systematic
disagreement (say, city names annotated LOC where the model says ORG in sports results) is seen
before the single examples.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from sparse_ner.review.score import DEFAULT_SCORE, Review

NONE = "O"


def disagreements(review: Review) -> list[tuple[str, str, str, str]]:
    """``(annotated label, predicted label, kind, words)`` for every disagreement of one example.

    ``kind`` is ``label``, ``boundary``, ``label+boundary``, ``missed`` (annotated, nothing
    predicted) or ``extra`` (predicted where the annotation says there is no such entity).
    """
    words = review.example.words
    pred = [(s, e, label) for s, e, label, _ in review.predicted]
    out = []
    for s, e, label in review.accepted:
        overlap = [(min(e, pe) - max(s, ps) + 1, (ps, pe, pl)) for ps, pe, pl in pred if ps <= e and s <= pe]
        text = " ".join(words[s : e + 1])
        if not overlap:
            out.append((label, NONE, "missed", text))
            continue
        ps, pe, pl = max(overlap)[1]
        kind = ("label" if pl != label else "") + ("+" if pl != label and (ps, pe) != (s, e) else "")
        kind += "boundary" if (ps, pe) != (s, e) else ""
        if kind:
            out.append((label, pl, kind, text))
    rejected = set(review.rejected)
    for ps, pe, pl in pred:
        if any(ps <= e and s <= pe for s, e, _ in review.accepted):
            continue
        if review.example.complete or (ps, pe, pl) in rejected:
            out.append((NONE, pl, "extra", " ".join(words[ps : pe + 1])))
    return out


GROUPS = {"label": "label", "label+boundary": "label", "boundary": "boundary", "extra": "missing", "missed": "spurious"}
"""The kind of a disagreement -> its group in the report: ``missing`` is an entity the model finds that
the annotation lacks (``extra``), ``spurious`` an annotated entity the model does not find (``missed``)."""


@dataclass
class Pattern:
    """One systematic disagreement: every ``annotated -> predicted`` disagreement of one group."""

    group: str
    annotated: str
    predicted: str
    count: int = 0
    words: Counter = field(default_factory=Counter)
    ranks: list[int] = field(default_factory=list)  # 1-based ranks of the examples, hardest first


def patterns(ranked: Sequence[Review]) -> list[Pattern]:
    """The disagreements of ``ranked`` grouped by (group, annotated, predicted), most frequent first."""
    found: dict[tuple[str, str, str], Pattern] = {}
    for i, r in enumerate(ranked, start=1):
        for a, p, kind, w in disagreements(r):
            key = (GROUPS[kind], a, p)
            pat = found.setdefault(key, Pattern(*key))
            pat.count += 1
            pat.words[w] += 1
            if not pat.ranks or pat.ranks[-1] != i:
                pat.ranks.append(i)
    return sorted(found.values(), key=lambda x: (-x.count, list(GROUPS.values()).index(x.group), x.annotated, x.predicted))


def confusion(reviews: Sequence[Review]) -> tuple[list[str], Counter]:
    """Labels (``O`` last) and counts of ``(annotated, predicted)`` entity pairs, agreements included."""
    counts: Counter = Counter()
    labels: set[str] = set()
    for r in reviews:
        pred = {(s, e): label for s, e, label, _ in r.predicted}
        for s, e, label in r.accepted:
            labels.add(label)
            if pred.get((s, e)) == label:
                counts[label, label] += 1
        for a, p, kind, _ in disagreements(r):
            counts[a, p] += 1
        labels |= {label for *_, label, _ in r.predicted}
    return sorted(labels) + [NONE], counts


def frequent_disagreements(reviews: Sequence[Review], n: int = 20) -> list[tuple[tuple[str, str, str, str], int]]:
    """The most frequent ``(words, annotated, predicted, kind)`` disagreements."""
    c = Counter((w, a, p, k) for r in reviews for a, p, k, w in disagreements(r))
    return c.most_common(n)


def _table(labels: list[str], counts: Counter) -> list[list[str]]:
    return [[a] + [str(counts.get((a, p), 0) or "") for p in labels] for a in labels]


def summary(ranked: Sequence[Review], score: str = DEFAULT_SCORE, top: int = 10, source: str = "") -> str:
    """A short plain-text summary: counts, the confusion table, frequent disagreements, the hardest."""
    n = len(ranked)
    flagged = sum(1 for r in ranked if disagreements(r))
    lines = [f"review of {n} examples by {score}" + (f" ({source})" if source else ""),
             f"{flagged} examples ({flagged / max(n, 1):.1%}) where the model disagrees with the annotation", ""]  # fmt: skip
    labels, counts = confusion(ranked)
    width = max(len(x) for x in labels + ["annotated"]) + 1
    lines.append("annotated \\ predicted".ljust(width + 2) + "".join(p.rjust(width) for p in labels))
    for row in _table(labels, counts):
        lines.append(row[0].ljust(width + 2) + "".join(x.rjust(width) for x in row[1:]))
    common = frequent_disagreements(ranked, 8)
    if common:
        lines += ["", "most frequent disagreements (annotated -> predicted):"]
        lines += [f"  {k:>3}x  {w!r}: {a} -> {p} ({kind})" for (w, a, p, kind), k in common]
    lines += ["", f"hardest {min(top, n)}:"]
    for i, r in enumerate(ranked[:top], start=1):
        diff = "; ".join(f"{w!r} {a}->{p}" + ("" if k == "label" else f" ({k})")
                         for a, p, k, w in disagreements(r)[:3]) or "(agrees)"  # fmt: skip
        lines.append(f"  {i:>3}. {r.scores[score]:8.3f}  {r.example.text[:60]!r}  {diff}")
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.diag{background:#e8f5e9}td.off{background:#fdecea}
.ex{border-top:1px solid #ddd;padding:.6em 0}.row{margin:.2em 0;line-height:2}.tag{font-size:.7em;color:#555;
margin-left:.3em;vertical-align:super}mark{padding:.1em .2em;border-radius:.25em}
mark.ann{background:#cfe2ff}mark.pred{background:#ffe08a}mark.bad{outline:2px solid #d33}
.score{color:#555;font-size:.9em}.who{display:inline-block;width:7em;color:#555;font-size:.85em}
"""


def _marked(review: Review, spans: list[tuple[int, int, str, str]], cls: str) -> str:
    """The text with ``spans`` ``(start, end, label, note)`` highlighted."""
    words = review.example.words
    starts = {s: (e, label, note) for s, e, label, note in spans}
    bad = {(a, w) for a, _, _, w in disagreements(review)} | {(p, w) for _, p, _, w in disagreements(review)}
    parts, t = [], 0
    while t < len(words):
        if t in starts:
            e, label, note = starts[t]
            text = " ".join(words[t : e + 1])
            flag = " bad" if (label, text) in bad else ""
            parts.append(f'<mark class="{cls}{flag}">{html.escape(text)}<span class="tag">{html.escape(label)}'
                         f"{html.escape(note)}</span></mark>")  # fmt: skip
            t = e + 1
        else:
            parts.append(html.escape(words[t]))
            t += 1
    return " ".join(parts)


def _patterns_html(ranked: Sequence[Review], n: int = 12, examples: int = 3) -> list[str]:
    """The ``n`` most frequent disagreement patterns, each with its words and its hardest examples."""
    pats = patterns(ranked)
    if not pats:
        return []
    out = ["<h2>Disagreements by kind, most frequent first</h2>",
           "<p>label: the model gives the span another label; boundary: other offsets; missing: the model finds "
           "an entity the annotation lacks; spurious: the model finds nothing where the annotation has an "
           "entity. A frequent pattern is often a convention to settle once, not single slips.</p>"]  # fmt: skip
    for pat in pats[:n]:
        words = ", ".join(f"{html.escape(w)}&nbsp;&times;{k}" for w, k in pat.words.most_common(8))
        out.append(f"<div class='ex'><b>{pat.group}</b>: {html.escape(pat.annotated)} &rarr; {html.escape(pat.predicted)}"
                   f" &middot; {pat.count} in {len(pat.ranks)} examples &middot; {words}")  # fmt: skip
        for i in pat.ranks[:examples]:
            r = ranked[i - 1]
            ann = [(s, e, label, "") for s, e, label in r.accepted]
            out.append(f"<div class='row'><span class='who'>#{i}</span>{_marked(r, ann, 'ann')}</div>")
        out.append("</div>")
    return out


def html_report(ranked: Sequence[Review], score: str = DEFAULT_SCORE, top: int = 50, source: str = "") -> str:
    """A self-contained HTML page: the confusion table, disagreement patterns by kind, the top examples."""
    n = len(ranked)
    labels, counts = confusion(ranked)
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>sparse_ner review</title><style>{_CSS}</style>"
           "</head><body>", f"<h1>Review: {n} examples, hardest first</h1>",
           f"<p>Score: <b>{html.escape(score)}</b>{' &mdash; ' + html.escape(source) if source else ''}. "
           "Higher is more likely an annotation mistake.</p>",
           "<h2>Annotation vs prediction (entities)</h2><table><tr><th>annotated \\ predicted</th>"]  # fmt: skip
    out.append("".join(f"<th>{html.escape(p)}</th>" for p in labels) + "</tr>")
    for row in _table(labels, counts):
        a = row[0]
        cells = "".join(f"<td class='{'diag' if a == p else ('off' if x else '')}'>{x}</td>"
                        for p, x in zip(labels, row[1:]))  # fmt: skip
        out.append(f"<tr><th>{html.escape(a)}</th>{cells}</tr>")
    out.append("</table>")
    out += _patterns_html(ranked)
    common = frequent_disagreements(ranked, 20)
    if common:
        out.append("<h2>Most frequent disagreements</h2><table><tr><th>count</th><th>words</th><th>annotated</th>"
                   "<th>predicted</th><th>kind</th></tr>")  # fmt: skip
        out += [f"<tr><td>{k}</td><td>{html.escape(w)}</td><td>{a}</td><td>{p}</td><td>{kind}</td></tr>"
                for (w, a, p, kind), k in common]  # fmt: skip
        out.append("</table>")
    out.append(f"<h2>Hardest {min(top, n)} examples</h2>")
    for i, r in enumerate(ranked[:top], start=1):
        ann = [(s, e, label, "") for s, e, label in r.accepted]
        pred = [(s, e, label, f" {p:.2f}") for s, e, label, p in r.predicted]
        kind = "complete" if r.example.complete else "binary"
        rej = ", ".join(f"{' '.join(r.example.words[s:e + 1])} ({label})" for s, e, label in r.rejected)
        out.append(f"<div class='ex'><div class='score'>#{i} &middot; {score} {r.scores[score]:.3f} &middot; "
                   f"{kind} annotation{' &middot; fold ' + str(r.fold) if r.fold is not None else ''}</div>"
                   f"<div class='row'><span class='who'>annotation</span>{_marked(r, ann, 'ann')}</div>"
                   f"<div class='row'><span class='who'>model</span>{_marked(r, pred, 'pred')}</div>"
                   + (f"<div class='row'><span class='who'>rejected</span>{html.escape(rej)}</div>" if rej else "")
                   + "</div>")  # fmt: skip
    out.append("</body></html>")
    return "\n".join(out)
