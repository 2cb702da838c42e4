"""The package's layout holds: imports only point down the wings, and there is no import circle.

``tags <- data <- core <- {training, loop, review, integrations} <- cli`` (``../shared/ARCHITECTURE.md``): a module
may import its own wing and the wings below it; ``loop`` never imports ``training``; ``review``
imports ``training`` only for out-of-fold models (``review/folds.py``). Every import counts,
function-local ones included (read from the source with ``ast``, nothing is executed).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sparse_ner"
LEVEL = {"tags": 0, "data": 1, "core": 2, "training": 3, "loop": 3, "review": 3, "integrations": 3, "cli": 4, "entry": 5}
ALLOWED_SIDEWAYS = {("review.folds", "training")}  # out-of-fold models are trained with Lightning


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__") or "__init__"


def wing(module: str) -> str:
    if module.endswith("__main__"):
        return "entry"
    head = module.split(".")[0]
    if head in LEVEL:
        return head
    return "entry"  # __init__, __main__ and the `python -m sparse_ner.NAME` shims


def imports_of(path: Path) -> set[str]:
    """The ``sparse_ner`` modules ``path`` imports (relative imports resolved)."""
    me = module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text("utf8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [".".join(["sparse_ner", *base, *([node.module] if node.module else [])])]
            else:
                names = [node.module or ""]
        else:
            continue
        out |= {n.removeprefix("sparse_ner.") for n in names if n.startswith("sparse_ner.")}
        if any(n == "sparse_ner" for n in names):
            out.add("__init__")
    return out


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}

    def resolve(name: str) -> str:  # `from sparse_ner.core import tagger` names a package
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    return {m: {resolve(i) for i in imports_of(p)} - {m, ""} for m, p in modules.items()}


def test_imports_point_down_the_wings():
    bad = []
    for module, targets in graph().items():
        if module == "__init__":
            continue
        for target in targets:
            a, b = wing(module), wing(target)
            if target == "__init__" and a != "entry":
                bad.append(f"{module} -> sparse_ner (the public facade)")
            elif a != b and LEVEL[b] >= LEVEL[a] and not any(module.startswith(m) and b == w
                                                             for m, w in ALLOWED_SIDEWAYS):  # fmt: skip
                bad.append(f"{module} ({a}) -> {target} ({b})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(sorted(bad))


def test_no_import_circle():
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(g.get(m, ())):
            if state.get(t) == 1:
                circles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_walk_sees_imports():
    """The checks above can fail: the walker finds known imports, local ones included."""
    g = graph()
    assert "core.crf" in g["core.tagger"] and "data.prodigy" in g["loop.memory"]
    assert wing("train") == "entry" and wing("loop.recipes") == "loop"
