"""The level is a dimension, not a branch: code that differs per level is resolved through a
registry (compilers, lint rules, costs, choice spaces, lowering steps, plan tracers, mask
columns), and the few ``if`` tests on a graph's level that remain are guards that refuse
a graph of the wrong level or validate the level itself. A new branch on the level fails
here: dispatch through a registry instead, or, for a guard, add it below with its reason.

Run ``python -m pytest tests/test_levels.py -s`` to print every level test in the package.
"""

import ast
import pathlib

import supernet

ROOT = pathlib.Path(supernet.__file__).resolve().parent

#: (module, enclosing function) -> why its level test is not a dispatch.
GUARDS = {
    ("compiler/layer.py", "__init__"): "the layer compiler refuses a unit-level graph",
    ("cost/layer.py", "graph_cost"): "the layer cost model refuses a unit-level graph",
    ("graph.py", "_check_level"): "validates a level a graph is made with or moved to",
    ("graph.py", "add_cell"): "cell templates are layer-level",
    ("units/build.py", "check_unit_graph"): "the unit storage refuses a layer-level graph",
    ("search/base.py", "require_layer"): "refuses unit graphs for parts that decide ops",
    ("search/base.py", "require_unit"): "refuses layer graphs for parts that prune or grow units",
    ("lowering.py", "_walk"): "walks the registered steps from one level to another",
}

_GUARDS = ("is_unit_level", "check_unit_graph", "require_layer", "require_unit")


def _mentions_level(node) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and n.attr == "level":
            return True
        if isinstance(n, ast.Name) and n.id in ("level", "UNIT_LEVELS"):
            return True
        if isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", "")) in _GUARDS:
            return True
    return False


def level_tests() -> list[tuple[str, str, int, str]]:
    """``(module, function, line, test)`` of every if/while/comprehension test on a level."""
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
                continue
            name = getattr(fn, "name", "<module>")
            for node in ast.walk(fn):
                if node is not fn and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue  # counted in its own function
                tests = []
                if isinstance(node, (ast.If, ast.IfExp, ast.While)):
                    tests = [node.test]
                elif isinstance(node, ast.comprehension):
                    tests = node.ifs
                for t in tests:
                    if _mentions_level(t) and _owner(fn, node) is fn:
                        out.append((rel, name, t.lineno, ast.unparse(t)))
    return sorted(set(out))


def _owner(fn, node):
    """The innermost function of ``fn`` (or ``fn`` itself) that contains ``node``."""
    for inner in ast.walk(fn):
        if inner is not fn and isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if any(n is node for n in ast.walk(inner)):
                return inner
    return fn


def test_every_level_test_is_a_guard():
    found = level_tests()
    for rel, name, line, test in found:
        print(f"supernet/{rel}:{line} in {name}: {test}")
    branches = [f"supernet/{r}:{line} ({n}: {t})" for r, n, line, t in found
                if (r, n) not in GUARDS]
    assert not branches, f"branches on the level outside a registry: {branches}"
    assert len(found) <= 10, f"{len(found)} level tests; expected at most 10"


def test_the_counter_sees_a_branch(tmp_path, monkeypatch):
    pkg = tmp_path / "supernet"
    pkg.mkdir()
    (pkg / "m.py").write_text("def f(graph):\n    return 2 if graph.level == 'neuron' else 1\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    assert level_tests() == [("m.py", "f", 2, "graph.level == 'neuron'")]
