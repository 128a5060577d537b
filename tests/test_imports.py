"""The package's import graph: acyclic, function-level imports included, and the core never
imports the library of spaces (it registers into :mod:`supernet.spaces` instead)."""

import ast
import pathlib

import networkx as nx

import supernet

ROOT = pathlib.Path(supernet.__file__).resolve().parent
#: The command line and the run driver import the pictures (matplotlib) only when drawing.
LAZY = {("supernet.cli", "supernet.viz"), ("supernet.run", "supernet.viz")}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = ("supernet",) + p.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: pathlib.Path):
    """``(imported module, line, function level)`` of every import statement of ``path``."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body} | {
        id(n) for s in tree.body if isinstance(s, (ast.If, ast.Try)) for n in ast.walk(s)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno, id(node) not in top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod, node.lineno, id(node) not in top
            for a in node.names:
                yield f"{mod}.{a.name}", node.lineno, id(node) not in top


def import_graph() -> nx.DiGraph:
    """Module -> module it imports (a package's ``__init__`` counts as imported with it)."""
    mods = _modules()
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for name, path in mods.items():
        for target, line, _ in _imports(name, path):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                pre = ".".join(parts[:i])
                # a module's own packages are loaded before it: no edge to them
                if pre in mods and pre != name and not name.startswith(pre + "."):
                    g.add_edge(name, pre, line=line)
    return g


def test_the_import_graph_is_acyclic_with_function_level_imports():
    g = import_graph()
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"
    assert g.number_of_edges() > 100  # the graph read is the real one


def test_the_test_sees_a_cycle(tmp_path, monkeypatch):
    # the checker itself: two modules importing each other make a cycle
    pkg = tmp_path / "supernet"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from supernet import b\n")
    (pkg / "b.py").write_text("from supernet.a import f\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    g = import_graph()
    assert {"supernet.a", "supernet.b"} in [set(c) for c in nx.strongly_connected_components(g)]


def test_the_core_does_not_import_the_library_of_spaces():
    found = []
    for name, path in _modules().items():
        for target, line, _ in _imports(name, path):
            if target.split(".")[0] == "search_spaces":
                found.append(f"{name}:{line}")
    assert not found, f"supernet imports search_spaces at {found}"


def test_function_level_imports_are_only_the_pictures_of_the_command_line():
    found = []
    for name, path in _modules().items():
        for target, line, inner in _imports(name, path):
            module = ".".join(target.split(".")[:2])
            if inner and target.split(".")[0] == "supernet" and (name, module) not in LAZY:
                found.append(f"{name}:{line} ({target})")
    assert not found, f"function-level imports below the command line: {sorted(set(found))}"
