"""The IR changes only through :class:`supernet.Graph`'s own methods: no module of the
package or of the library of spaces writes ``graph.nx`` (or the attribute dicts that
``Graph.node`` / ``Graph.edge`` return) itself. Writes that bypass the graph would not bump
``graph.version``, and a compiled module would not see that it is stale."""

import ast
import pathlib

import supernet

ROOT = pathlib.Path(supernet.__file__).resolve().parent
#: Where writing the networkx graph is allowed: the graph itself.
ALLOWED = {"supernet/graph.py"}

#: Methods that change a networkx graph, a dict or a list in place.
MUTATING = {
    "add_node", "add_nodes_from", "add_edge", "add_edges_from", "add_weighted_edges_from",
    "remove_node", "remove_nodes_from", "remove_edge", "remove_edges_from", "clear",
    "clear_edges", "update", "pop", "popitem", "setdefault", "__setitem__", "__delitem__",
    "append", "extend", "insert", "remove", "sort", "reverse",
}
_VIEWS = {"graph", "nodes", "edges", "adj", "succ", "pred", "_node", "_adj", "_succ", "_pred"}


def _is_ir(e) -> bool:
    """``X.nx``, ``X.nx.graph``, ``X.nx.nodes[..]``, ``X.nx.edges[..]`` (and what they hold),
    ``X.meta``, ``X.node(n)``, ``X.edge(u, v)``."""
    if isinstance(e, ast.Attribute):
        return e.attr in ("nx", "meta") or (e.attr in _VIEWS and _is_ir(e.value))
    if isinstance(e, ast.Subscript):
        return _is_ir(e.value)
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and not e.keywords:
        n = len(e.args)
        starred = any(isinstance(a, ast.Starred) for a in e.args)
        return (e.func.attr == "node" and n == 1) or (e.func.attr == "edge" and (n == 2 or starred))
    if isinstance(e, ast.IfExp):
        return _is_ir(e.body) or _is_ir(e.orelse)
    return False


def _aliases(scope) -> set[str]:
    """Names bound to a piece of the IR in ``scope``: ``d = g.node(n)``,
    ``for u, v, e in g.nx.edges(data=True)``."""
    out = set()
    for n in ast.walk(scope):
        if isinstance(n, ast.Assign) and _is_ir(n.value):
            out |= {t.id for t in n.targets if isinstance(t, ast.Name)}
        elif isinstance(n, (ast.For, ast.comprehension)):
            it = n.iter
            if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute):
                it = it.func.value
            if _is_ir(it):
                out |= {t.id for t in ast.walk(n.target) if isinstance(t, ast.Name)}
    return out


def writes(source: str) -> list[tuple[int, str]]:
    """``(line, code)`` of every write into the IR that ``source`` does itself."""
    tree = ast.parse(source)
    out = set()
    for scope in ast.walk(tree):
        if not isinstance(scope, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        names = _aliases(scope)

        def ir(e):
            return _is_ir(e) or (isinstance(e, ast.Name) and e.id in names)

        for n in ast.walk(scope):
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr in MUTATING and ir(n.func.value)):
                out.add((n.lineno, ast.unparse(n)))
            targets = {ast.Assign: lambda s: s.targets, ast.AugAssign: lambda s: [s.target],
                       ast.AnnAssign: lambda s: [s.target], ast.Delete: lambda s: s.targets}
            for t in targets.get(type(n), lambda s: [])(n):
                for t in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]):
                    if isinstance(t, (ast.Subscript, ast.Attribute)) and ir(t.value):
                        out.add((n.lineno, ast.unparse(n)))
                    elif isinstance(t, ast.Attribute) and t.attr == "nx":
                        out.add((n.lineno, ast.unparse(n)))
    return sorted(out)


def _sources():
    base = ROOT.parent
    for root in (ROOT, base / "search_spaces"):
        for p in sorted(root.rglob("*.py")):
            yield p.relative_to(base).as_posix(), p


def test_only_the_graph_writes_the_ir():
    seen, found = 0, []
    for rel, path in _sources():
        seen += 1
        if rel in ALLOWED:
            assert writes(path.read_text()), f"{rel} writes its networkx graph; the test missed it"
            continue
        found += [f"{rel}:{line}: {code}" for line, code in writes(path.read_text())]
    assert seen > 100  # the files read are the real ones
    assert not found, ("change the graph through Graph's methods (set_node_attrs, "
                       "set_edge_attrs, insert_edge, ...), not in place:\n" + "\n".join(found))


def test_the_check_sees_each_kind_of_write():
    code = '''
def f(graph, g, u, v, n):
    graph.nx.add_edge(u, v)
    graph.nx.graph["level"] = "neuron"
    graph.nx.graph.update({})
    g.nx.nodes[n]["units"] = 0
    g.nx.edges[u, v]["mask"] += 1
    del g.nx.nodes[n]["op"]
    g.nx.nodes[n].pop("op", None)
    graph.node(n)["gated"] = True
    graph.edge(u, v)["ops"].append("none")
    d = graph.node(n) if n else graph.edge(u, v)
    d["gated"] = False
    for a, b, e in graph.nx.edges(data=True):
        e["mask"] = None
    graph.nx = None
    g.meta["space"] = "darts"
    g.meta.update({})
'''
    lines = [line for line, _ in writes(code)]
    assert lines == [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 16, 17, 18]


def test_the_check_lets_reads_and_graph_methods_be():
    code = '''
def f(graph, u, v, n, s):
    d = graph.node(n)
    units = list(d["units"])
    units.append(1)
    graph.set_node_attrs(n, units=units)
    graph.set_edge_attrs(u, v, mask=graph.edge(u, v)["mask"])
    m = s.node(n, graph.nx.nodes[n], None)
    m.update({})
    for a, b, e in graph.nx.edges(data=True):
        graph.set_edge_attrs(a, b, kind=e["kind"])
'''
    assert writes(code) == []
