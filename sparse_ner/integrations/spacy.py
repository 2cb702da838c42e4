"""An exported tagger as a spaCy pipeline component: ``spacy.load``, ``nlp.pipe``, ``doc.ents``, ``spacy evaluate``.

:func:`to_spacy` puts a model into a pipeline (``spacy.blank(lang)`` or one you give);
:func:`write_pipeline` writes it as a pipeline folder (``sparse-ner to-spacy MODEL OUT_DIR``), which
``spacy.load(OUT_DIR)`` reads back in any process where ``sparse_ner`` is installed: the factory
``sparse_ner_tagger`` is registered through the ``spacy_factories`` entry point. The model travels
inside the folder (``OUT_DIR/ner/`` is an exported model folder, :mod:`sparse_ner.core.export`), so
the folder is self-contained and ``spacy package`` can build a wheel from it.

The component (:class:`SparseNerTagger`, named ``ner`` by default):

- takes its words from the Doc's tokens (spaCy's tokenizer, or a Doc made from ``words``/``spaces``);
  whitespace tokens are left out of the tagger's input (our tokenizer never makes them), so a span
  keeps exact character offsets and may only contain whitespace tokens inside it;
- sets ``doc.ents`` to the Viterbi spans (replacing entities set before it) and ``doc.spans[spans_key]``
  to the same spans with ``attrs["scores"]``: each span's exact probability ``P(span is an entity)``
  (:meth:`sparse_ner.core.crf.CRF.span_probs`), spaCy's convention for scored span groups;
- exposes ``labels`` (``nlp.pipe_labels["ner"]``) and ``score(examples)`` with spaCy's NER scores
  (``ents_p``, ``ents_r``, ``ents_f``, ``ents_per_type``: :func:`spacy.scorer.get_ner_prf`, as
  spaCy's own ``ner`` scores, so ``spacy evaluate`` and Prodigy's recipes read them);
- tags ``batch_size`` Docs at a time in :meth:`~SparseNerTagger.pipe`.

spaCy imports every ``spacy_factories`` entry point whenever it builds a ``Language``, so this
module imports neither torch nor the model code at import time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy
import srsly
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import validate_examples
from spacy.util import minibatch
from spacy.vocab import Vocab

from sparse_ner.data.example import Example, Token

if TYPE_CHECKING:
    from spacy.training import Example as SpacyExample

    from sparse_ner.core.tagger import ScoredSpan, Tagger

FACTORY = "sparse_ner_tagger"
SPANS_KEY = "sparse_ner"
BATCH_SIZE = 64


class SparseNerTagger:
    """A spaCy pipeline component over a :class:`~sparse_ner.core.tagger.Tagger` (see the module docstring)."""

    def __init__(self, vocab: Vocab, tagger: "Tagger | None" = None, *, name: str = "ner",
                 spans_key: str = SPANS_KEY, batch_size: int = BATCH_SIZE) -> None:  # fmt: skip
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.vocab = vocab
        self.tagger = tagger
        self.name = name
        self.spans_key = spans_key
        self.batch_size = batch_size

    @property
    def labels(self) -> tuple[str, ...]:
        """The tagger's entity labels (empty before a model is loaded)."""
        return tuple(self.tagger.labels) if self.tagger is not None else ()

    def _require(self) -> "Tagger":
        if self.tagger is None:
            raise ValueError(f"the {self.name!r} component has no model: make the pipeline with "
                             "sparse_ner.to_spacy(model) or load it with spacy.load(folder)")  # fmt: skip
        return self.tagger

    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int | None = None) -> Iterator[Doc]:
        """Tag ``stream`` ``batch_size`` Docs at a time (default: the component's ``batch_size``)."""
        for docs in minibatch(stream, size=batch_size or self.batch_size):
            self.set_annotations(docs, self.predict(docs))
            yield from docs

    def predict(self, docs: Sequence[Doc]) -> list[list["ScoredSpan"]]:
        """Per Doc, the Viterbi spans with their probability, in the Doc's token offsets (end inclusive)."""
        tagger = self._require()
        kept = [[t.i for t in doc if not t.is_space] for doc in docs]  # the tagger's words, as Doc indices
        examples = [Example(doc.text, [Token(doc[i].text, doc[i].idx, doc[i].idx + len(doc[i]), bool(doc[i].whitespace_))
                                       for i in ids]) for doc, ids in zip(docs, kept)]  # fmt: skip
        nonempty = [k for k, ex in enumerate(examples) if ex.tokens]
        tagged = tagger.tag([examples[k] for k in nonempty], batch_size=max(len(nonempty), 1))
        out: list[list[ScoredSpan]] = [[] for _ in docs]
        for k, spans in zip(nonempty, tagged):
            ids = kept[k]
            out[k] = [s._replace(start=ids[s.start], end=ids[s.end]) for s in spans]
        return out

    def set_annotations(self, docs: Sequence[Doc], predictions: Sequence[Sequence["ScoredSpan"]]) -> None:
        """``doc.ents`` and ``doc.spans[spans_key]`` (with ``attrs["scores"]``) from :meth:`predict`."""
        for doc, spans in zip(docs, predictions):
            ents = [Span(doc, s.start, s.end + 1, label=s.label) for s in spans]
            doc.ents = ents
            scores = numpy.asarray([s.score for s in spans], dtype="float64")  # (n_spans,)
            doc.spans[self.spans_key] = SpanGroup(doc, name=self.spans_key, spans=ents, attrs={"scores": scores})

    def score(self, examples: Iterable["SpacyExample"], **kwargs: Any) -> dict[str, Any]:
        """spaCy's NER scores of ``examples`` (``ents_p``, ``ents_r``, ``ents_f``, ``ents_per_type``;
        ``None`` when no example has a gold or predicted entity), as spaCy's ``ner`` computes them."""
        examples = list(examples)
        validate_examples(examples, "SparseNerTagger.score")
        return get_ner_prf(examples, **kwargs)

    # serialization: the model folder of sparse_ner.core.export, inside the pipeline folder

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        from sparse_ner.core.export import export

        export(self._require(), path)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "SparseNerTagger":
        from sparse_ner.core.export import load

        self.tagger = load(path)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp)
            files = {p.relative_to(tmp).as_posix(): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
        return srsly.msgpack_dumps({"files": files})

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> "SparseNerTagger":
        files = srsly.msgpack_loads(data)["files"]
        with tempfile.TemporaryDirectory() as tmp:
            for name, blob in files.items():
                rel = PurePosixPath(name)
                if rel.is_absolute() or ".." in rel.parts:
                    raise ValueError(f"bad file name in the component's bytes: {name!r}")
                target = Path(tmp, *rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(blob)
            return self.from_disk(tmp)


@Language.factory(
    FACTORY,
    default_config={"spans_key": SPANS_KEY, "batch_size": BATCH_SIZE},
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_component(nlp: Language, name: str, spans_key: str, batch_size: int) -> SparseNerTagger:
    """The factory behind ``nlp.add_pipe("sparse_ner_tagger")``: a component without a model yet
    (``spacy.load`` fills it from the folder; :func:`to_spacy` sets it)."""
    return SparseNerTagger(nlp.vocab, name=name, spans_key=spans_key, batch_size=batch_size)


def to_spacy(model: "str | Path | Tagger", nlp: Language | None = None, *, lang: str = "en", name: str = "ner",
             spans_key: str = SPANS_KEY, batch_size: int = BATCH_SIZE) -> Language:  # fmt: skip
    """``nlp`` (default: ``spacy.blank(lang)``) with the tagger ``model`` (an exported folder or a
    :class:`~sparse_ner.core.tagger.Tagger`) added as the component ``name``; ``nlp`` is changed in place."""
    import spacy

    from sparse_ner.core.export import load

    tagger = load(model) if isinstance(model, (str, Path)) else model
    if nlp is None:
        try:
            nlp = spacy.blank(lang)
        except ImportError as err:  # an unknown language, or one whose tokenizer needs another package
            raise ValueError(f"spaCy cannot make a {lang!r} pipeline: {err}") from err
        nlp.meta["name"] = "sparse_ner"
        nlp.meta["description"] = "A sparse_ner tagger (trained from binary ner.teach answers) as a spaCy pipeline"
    if name in nlp.pipe_names:
        raise ValueError(f"the pipeline already has a component named {name!r}: give another name")
    component = nlp.add_pipe(FACTORY, name=name, config={"spans_key": spans_key, "batch_size": batch_size})
    component.tagger = tagger.eval()
    requirement = f"sparse-ner>={_version()}"
    requirements = nlp.meta.setdefault("requirements", [])
    if not any(r.replace("_", "-").startswith("sparse-ner") for r in requirements):
        requirements.append(requirement)
    return nlp


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sparse-ner")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "0.1.0"


def write_pipeline(model: str | Path, out_dir: str | Path, *, lang: str = "en", name: str = "ner",
                   spans_key: str = SPANS_KEY, force: bool = False) -> Path:  # fmt: skip
    """Write the exported ``model`` as a spaCy pipeline folder ``out_dir`` (:func:`to_spacy` on
    ``spacy.blank(lang)``). An existing non-empty ``out_dir`` is refused unless ``force``; the model
    folder (or a folder holding it) never is. The pipeline is written to a temporary folder beside
    ``out_dir`` and renamed onto it only when complete."""
    model, out = Path(model), Path(out_dir)
    if not (model / "tagger.json").is_file():
        raise FileNotFoundError(f"{model} is not an exported sparse_ner model folder (no tagger.json)")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file: give a folder path for the pipeline")
    if out.exists() and (out.resolve() == model.resolve() or out.resolve() in model.resolve().parents):
        raise ValueError(f"refusing to write the pipeline over its input model {model}: give another folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(f"{out} exists and is not empty: give another folder, or --force (force=True) to replace it")
    nlp = to_spacy(model, lang=lang, name=name, spans_key=spans_key)
    parent = out.parent if str(out.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    try:
        nlp.to_disk(tmp)
        if out.exists():  # forced: move the old folder aside, put the new one in place, then remove the old
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=parent))
            os.replace(out, old / "pipeline")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


__all__ = ["BATCH_SIZE", "FACTORY", "SPANS_KEY", "SparseNerTagger", "make_component", "to_spacy", "write_pipeline"]
