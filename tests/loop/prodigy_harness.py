"""A stand-in for Prodigy (not installable here) that runs recipes the way Prodigy's controller does.

``install(monkeypatch)`` puts a stub ``prodigy`` package on ``sys.modules`` with what the recipes
import: ``prodigy.recipe`` / ``prodigy.core.recipe`` (with a registry, and ``Arg``),
``prodigy.set_hashes`` / ``prodigy.util.set_hashes`` (a hash that differs from sparse_ner's fallback,
so a test sees which one a task carries), and ``prodigy.components.stream.Stream``
(``from_iterable``, ``apply``, iteration) and ``get_stream``.

:class:`Controller` then does what ``prodigy RECIPE ARGS`` does with a recipe:

- finds the recipe through the ``prodigy_recipes`` entry points (``importlib.metadata``), or by
  loading a file as ``-F`` does;
- parses the command line with plac (Prodigy 1.11: the decorator's tuples become the function's
  annotations) or radicli (Prodigy >= 1.12: the tuples become ``Arg`` s, the types come from the
  function's type hints), the real libraries;
- checks the components and config keys, and that the stream is a ``Stream`` where one is expected;
- serves batches of ``batch_size``, excluding tasks already in the dataset (``exclude_by`` task or
  input hash), and fails on an empty first batch;
- round-trips every task and answer through JSON; calls ``before_db``, stores the answers, and calls
  ``update`` in another thread while the next batch is fetched; calls ``on_exit``.

Where it differs from real Prodigy: no web server, database or sessions (one annotator, answers kept
in a list and written as db-out JSONL); the stub's hashes are not Prodigy's numbers (only their
role); the stream is pulled one batch at a time by one thread, never re-queued or timed out;
validation of tasks against the interface's JSON schema is reduced to the fields checked in
:func:`check_task`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import shlex
import sys
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

COMPONENT_KEYS = {"dataset", "view_id", "stream", "update", "db", "progress", "on_load", "on_exit", "before_db",
                  "validate_answer", "get_session_id", "exclude", "config", "task_router", "session_factory"}  # fmt: skip
CONFIG_KEYS = {"batch_size", "lang", "label", "labels", "exclude_by", "auto_count_stream", "feed_overlap",
               "instant_submit", "choice_style", "blocks", "custom_theme", "force_stream_order", "history_length",
               "show_stats", "hide_meta", "ner_manual_highlight_chars", "span_labels", "swipe", "show_flag"}  # fmt: skip
VIEWS = {"ner", "ner_manual", "spans_manual"}


# --- the stub package -------------------------------------------------------------------------------

REGISTRY: dict[str, tuple[Callable, dict]] = {}


def recipe(name: str, **args: Any) -> Callable:
    def wrap(fn: Callable) -> Callable:
        REGISTRY[name] = (fn, args)
        return fn

    return wrap


class Arg:  # prodigy.core.Arg (radicli's)
    def __init__(self, option: str | None = None, short: str | None = None, help: str | None = None,
                 converter: Callable | None = None):  # fmt: skip
        self.option, self.short, self.help, self.converter = option, short, help, converter


def _hash(prefix: str, obj: Any) -> int:
    digest = hashlib.sha1((prefix + json.dumps(obj, sort_keys=True, default=str)).encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def set_hashes(task: dict, input_keys=("text", "image", "html", "input"), task_keys=("spans", "label", "options"),
               ignore=("score", "rank", "model", "source", "_view_id", "_session_id"), overwrite=False) -> dict:  # fmt: skip
    """Prodigy's signature; not its numbers."""
    if not overwrite and "_input_hash" in task and "_task_hash" in task:
        return task

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if k not in ignore}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    in_hash = _hash("stub-input", {k: task[k] for k in input_keys if k in task})
    task["_input_hash"] = in_hash
    task["_task_hash"] = _hash(f"stub-task{in_hash}", {k: clean(task[k]) for k in task_keys if k in task})
    return task


class Stream:
    """Prodigy 1.12+'s stream wrapper: ``from_iterable``, ``apply(func, **kwargs)``, iteration."""

    def __init__(self, iterable: Iterable[dict]):
        self._iter = iter(iterable)
        self.applied: list[Callable] = []

    @classmethod
    def from_iterable(cls, iterable: Iterable[dict]) -> "Stream":
        return cls(iterable)

    def apply(self, func: Callable, *args: Any, **kwargs: Any) -> "Stream":
        current = self._iter
        if kwargs.get("stream") is self:  # stream.apply(fn, stream=stream): the stream so far
            kwargs["stream"] = current
            result = func(*args, **kwargs)
        elif "stream" in kwargs:
            result = func(*args, **kwargs)
        else:
            result = func(current, *args, **kwargs)
        self._iter = iter(result)
        self.applied.append(func)
        return self

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        task = next(self._iter)
        if not isinstance(task, dict):
            raise TypeError(f"a stream must yield task dicts, got {type(task).__name__}")
        return task


def get_stream(source: Any, rehash: bool = False, dedup: bool = False, input_key: str = "text", **_: Any) -> Stream:
    if isinstance(source, (str, Path)):
        source = [json.loads(line) for line in Path(source).read_text("utf8").splitlines() if line.strip()]
    return Stream.from_iterable(set_hashes(dict(t), overwrite=rehash) for t in source)


def install(monkeypatch: Any) -> types.ModuleType:
    """Put the stub ``prodigy`` package on ``sys.modules`` (undone by ``monkeypatch``) and forget any
    imported ``sparse_ner.loop.recipes`` (it decides at import whether Prodigy is there)."""
    REGISTRY.clear()
    pkg = types.ModuleType("prodigy")
    pkg.__path__ = []  # a package
    pkg.recipe, pkg.set_hashes, pkg.REGISTRY = recipe, set_hashes, REGISTRY
    core = types.ModuleType("prodigy.core")
    core.recipe, core.Arg = recipe, Arg
    util = types.ModuleType("prodigy.util")
    util.set_hashes = set_hashes
    components = types.ModuleType("prodigy.components")
    components.__path__ = []
    stream = types.ModuleType("prodigy.components.stream")
    stream.Stream, stream.get_stream = Stream, get_stream
    pkg.core, pkg.util, pkg.components, components.stream = core, util, components, stream
    for name, mod in [("prodigy", pkg), ("prodigy.core", core), ("prodigy.util", util),
                      ("prodigy.components", components), ("prodigy.components.stream", stream)]:  # fmt: skip
        monkeypatch.setitem(sys.modules, name, mod)
    for name in ("sparse_ner.loop.recipes", "sparse_ner.review.recipe"):  # re-registered on the next import
        monkeypatch.delitem(sys.modules, name, raising=False)
    return pkg


# --- loading and parsing, as Prodigy's command line does ---------------------------------------------


def load_entry_points() -> None:
    """Import every ``prodigy_recipes`` entry point (their decorators register the recipes)."""
    for ep in importlib.metadata.entry_points(group="prodigy_recipes"):
        ep.load()


def load_file(path: str | Path) -> None:
    """``prodigy RECIPE ... -F path``: import the file as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"prodigy_recipe_file_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]


def parse_plac(fn: Callable, annotations: dict, argv: list[str]) -> dict:
    """Prodigy 1.11: plac parses ``argv`` against the decorator's tuples (set as the annotations of a
    copy of the function, as ``plac.annotations`` does)."""
    import plac

    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__annotations__ = dict(annotations)
    parser = plac.parser_from(copy)
    ns = parser.parse_args(argv)
    names = inspect.signature(fn).parameters
    return {k: getattr(ns, k) for k in names}


def parse_radicli(name: str, fn: Callable, annotations: dict, argv: list[str]) -> dict:
    """Prodigy >= 1.12: the tuples become radicli ``Arg`` s and radicli reads the types from the
    signature (``Optional[str]``, ``int``, ``bool`` ...)."""
    from radicli import Arg as RArg
    from radicli import Radicli
    from radicli.cli import Command

    args = {}
    for param, spec in annotations.items():
        if isinstance(spec, Arg):
            args[param] = RArg(spec.option, spec.short, help=spec.help, converter=spec.converter)
            continue
        help_, kind, short = spec[0], spec[1], spec[2] if len(spec) > 2 else None
        if kind == "positional":
            args[param] = RArg(help=help_)
        else:
            args[param] = RArg(f"--{param.replace('_', '-')}", f"-{short}" if short else None, help=help_)
    command = Command.from_function(name, args, fn)
    return Radicli().parse(argv, command)


# --- the controller ---------------------------------------------------------------------------------


def roundtrip(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def check_task(task: dict, view: str) -> None:
    assert isinstance(task, dict), f"a task must be a dict, got {type(task).__name__}"
    for key in ("_input_hash", "_task_hash"):
        assert isinstance(task.get(key), int), f"task without an integer {key}: {task.get(key)!r}"
    assert isinstance(task.get("text"), str) and task["text"], "task without text"
    tokens = task.get("tokens")
    assert isinstance(tokens, list) and tokens, "task without tokens"
    for sp in task.get("spans", []):
        assert 0 <= sp["token_start"] <= sp["token_end"] < len(tokens), f"span outside the tokens: {sp}"
        assert task["text"][sp["start"]:sp["end"]] == task["text"][tokens[sp["token_start"]]["start"]:
                                                                    tokens[sp["token_end"]]["end"]]  # fmt: skip
    if view == "ner":
        assert len(task.get("spans", [])) == 1, "a binary ner task shows exactly one span"


@dataclass
class Session:
    """What one run of a recipe served and stored."""

    served: list[dict] = field(default_factory=list)  # every task served (after exclusion), JSON round-tripped
    recipe_yielded: list[dict] = field(default_factory=list)  # every task the recipe's stream yielded
    losses: list[float] = field(default_factory=list)


class Controller:
    """Runs one recipe command line against a dataset (a list of stored answers)."""

    def __init__(self, parser: str = "radicli"):
        assert parser in ("plac", "radicli")
        self.parser = parser
        self.db: list[dict] = []  # the dataset: every answer stored, in order

    def components(self, command: str) -> dict:
        """``prodigy RECIPE ARGS``: find the recipe, parse the arguments, run it, check the result."""
        argv = shlex.split(command)
        assert argv[0] == "prodigy", command
        name, rest = argv[1], argv[2:]
        if "-F" in rest:
            i = rest.index("-F")
            load_file(rest[i + 1])
            rest = rest[:i] + rest[i + 2:]
        if name not in REGISTRY:
            load_entry_points()
        assert name in REGISTRY, f"recipe {name} not registered; have {sorted(REGISTRY)}"
        fn, annotations = REGISTRY[name]
        values = parse_plac(fn, annotations, rest) if self.parser == "plac" else \
            parse_radicli(name, fn, annotations, rest)  # fmt: skip
        comps = fn(**values)
        assert isinstance(comps, dict), "a recipe returns a dict of components"
        unknown = set(comps) - COMPONENT_KEYS
        assert not unknown, f"unknown components {unknown}"
        assert comps.get("view_id") in VIEWS and isinstance(comps.get("dataset"), str)
        config = comps.get("config", {})
        assert not set(config) - CONFIG_KEYS, f"unknown config keys {set(config) - CONFIG_KEYS}"
        assert isinstance(comps["stream"], Stream), "Prodigy >= 1.12 recipes return Stream objects"
        return comps

    def run(self, command: str, annotate: Callable[[dict, str], dict], max_batches: int = 10**9) -> Session:
        """Serve the recipe's stream batch by batch, answer with ``annotate(task, view) -> answer``,
        store and update as Prodigy does (see the module docstring), then call ``on_exit``."""
        comps = self.components(command)
        view, config = comps["view_id"], comps.get("config", {})
        size = config.get("batch_size", 10)
        exclude_by = config.get("exclude_by", "task")
        key = "_input_hash" if exclude_by == "input" else "_task_hash"
        session = Session()

        def seen() -> set:
            return {a[key] for a in self.db}

        stream = iter(comps["stream"])

        def next_batch() -> list[dict]:
            batch: list[dict] = []
            done = seen()
            for task in stream:
                session.recipe_yielded.append(task)
                task = roundtrip(task)
                check_task(task, view)
                if task[key] in done:
                    continue
                done.add(task[key])
                batch.append(task)
                if len(batch) == size:
                    break
            return batch

        batch = next_batch()
        assert batch, "no first batch: the stream yielded no task to show"
        n = 0
        while batch and n < max_batches:
            n += 1
            session.served.extend(batch)
            answers = [roundtrip(annotate(dict(task), view)) for task in batch]
            if comps.get("before_db"):
                answers = comps["before_db"](answers)
            stored = roundtrip(answers)
            self.db.extend(stored)
            error: list[BaseException] = []

            def update(answers: list[dict] = stored) -> None:
                try:
                    if comps.get("update"):
                        loss = comps["update"](answers)
                        assert isinstance(loss, float), f"update returned {type(loss).__name__}, not a float"
                        session.losses.append(loss)
                except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
                    error.append(e)

            thread = threading.Thread(target=update)
            thread.start()  # the web thread learns while the next batch is fetched
            batch = next_batch() if n < max_batches else []
            thread.join()
            if error:
                raise error[0]
        if comps.get("on_exit"):
            comps["on_exit"](self)
        return session

    def db_out(self, path: str | Path) -> Path:
        """``prodigy db-out DATASET > path``."""
        path = Path(path)
        path.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in self.db), "utf8")
        return path
