"""Pictures of a search: graphs and cells as drawings, architecture weights over the epochs.

* :func:`draw_graph` draws one graph (a whole network or a cell template) left to right in
  topological layers; an edge is labelled with its op, or with its candidates' strongest
  one and their count while it is still a choice.
* :func:`draw_cells` draws a graph and each cell template it calls, one file each.
* :func:`plot_gates` plots, per gate, the weight of every candidate over the epochs of a
  search history (:attr:`supernet.search.SearchResult.history`).

Drawings are matplotlib figures rendered to files, without pyplot: the backend and the
figures of a notebook or a script are left as they were.

Examples:
    >>> import os, tempfile
    >>> from supernet import Graph
    >>> g = Graph("layer", name="tiny"); g.add_input("x", channels=2); g.add_node("h", channels=2)
    >>> g.add_edge("x", "h", ["conv_3x3", "skip_connect"]); g.set_outputs(["h"])
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.png")
    >>> draw_graph(g, path) == path and os.path.getsize(path) > 0
    True
"""

from __future__ import annotations

import math
import os

import networkx as nx

from supernet.errors import GraphError
from supernet.io import atomic_write, file_part, path_inside

_FORMATS = ("png", "svg", "pdf")

__all__ = ["draw_graph", "draw_cells", "plot_gates"]

#: Graphs with more nodes are not drawn (unit levels stay readable up to a few hundred).
MAX_NODES = 400


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _edge_label(e: dict, weights=None) -> str:
    ops = e.get("ops")
    if ops is None:  # unit levels: the connection's kind
        return str(e.get("kind", ""))
    if len(ops) == 1:
        return ops[0]
    if weights is not None:
        best = max(range(len(ops)), key=lambda i: weights[i])
        return f"{ops[best]} ({weights[best]:.2f}) of {len(ops)}"
    return f"{len(ops)} candidates"


def draw_graph(graph, path: str, title: str | None = None, weights: dict | None = None) -> str:
    """Draw ``graph`` to ``path`` (PNG, SVG or PDF by its extension) and return ``path``.

    Args:
        weights: gate key (``"u->v"``) -> candidate weights, to label undecided edges with
            their strongest candidate (e.g. the last record of a search history).
    """
    n = graph.nx.number_of_nodes()
    if n > MAX_NODES:
        raise GraphError(f"{graph.name}: {n} nodes are too many to draw (at most {MAX_NODES}); "
                         "draw a cell or a smaller graph")
    layers = list(nx.topological_generations(graph.nx))
    pos = {}
    for x, layer in enumerate(layers):
        for y, node in enumerate(sorted(layer, key=str)):
            pos[node] = (x, (len(layer) - 1) / 2 - y)
    width = max(4.0, 2.2 * len(layers))
    height = max(3.0, 1.3 * max(len(layer) for layer in layers)) if layers else 3.0
    fig = _figure(min(width, 40), min(height, 40))
    ax = fig.subplots()
    inputs, outputs = set(graph.inputs), set(graph.outputs)
    colors = ["#9ecae1" if v in inputs else "#fdae6b" if v in outputs else "#e5e5e5"
              for v in graph.nx.nodes]
    nx.draw_networkx_nodes(graph.nx, pos, ax=ax, node_color=colors, node_size=900,
                           edgecolors="#555555")
    labels = {}
    for v, d in graph.nx.nodes(data=True):
        extra = d.get("cell") if d.get("kind") == "call" else None
        labels[v] = f"{v}\n[{extra}]" if extra else str(v)
    nx.draw_networkx_labels(graph.nx, pos, labels, ax=ax, font_size=7)
    nx.draw_networkx_edges(graph.nx, pos, ax=ax, arrows=True, arrowsize=12, node_size=900,
                           connectionstyle="arc3,rad=0.08")
    weights = weights or {}
    edge_labels = {(u, v): _edge_label(e, weights.get(f"{u}->{v}"))
                   for u, v, e in graph.nx.edges(data=True)}
    nx.draw_networkx_edge_labels(graph.nx, pos, edge_labels, ax=ax, font_size=6,
                                 connectionstyle="arc3,rad=0.08")
    ax.set_title(title or graph.name)
    ax.axis("off")
    fig.tight_layout()
    return _save(fig, path, dpi=120)


def draw_cells(graph, directory: str, fmt: str = "png", weights: dict | None = None) -> list[str]:
    """Draw ``graph`` (``graph.<fmt>``) and each of its cell templates (``cell_<name>.<fmt>``)
    into ``directory``; returns the paths. ``weights``: as for :func:`draw_graph`, keyed by
    the module's gate keys (``"normal:c0->n0"`` for a cell's edges)."""
    if fmt not in _FORMATS:
        raise GraphError(f"cannot draw to format {fmt!r}; expected one of {list(_FORMATS)}")
    weights = weights or {}
    paths = []
    if graph.nx.number_of_nodes() <= MAX_NODES:
        paths.append(draw_graph(graph, path_inside(directory, f"graph.{fmt}"), weights=weights))
    for name, cell in graph.cells.items():
        mine = {k[len(name) + 1:]: w for k, w in weights.items() if k.startswith(name + ":")}
        # a template's name is the file's: made safe, it never leaves the folder
        path = path_inside(directory, f"cell_{file_part(name, 'cell name')}.{fmt}")
        paths.append(draw_graph(cell, path, title=f"cell {name!r} of {graph.name}",
                                weights=mine))
    return paths


def plot_gates(history: list[dict], path: str, max_gates: int = 48) -> str | None:
    """Plot the candidate weights of every gate over the epochs of a search ``history``
    (its ``gates`` and ``candidates`` records); ``None`` when it has no gate. Unit-level
    gates show the mean keep weight of their units."""
    series: dict[str, dict[str, list]] = {}
    for rec in history:
        gates, names = rec.get("gates") or {}, rec.get("candidates") or {}
        for key, rows in gates.items():
            if key not in names or not rows:
                continue
            probs = [sum(r[i] for r in rows) / len(rows) for i in range(len(rows[0]))]
            for op, p in zip(names[key], probs):
                series.setdefault(key, {}).setdefault(op, []).append((rec["epoch"], p))
    if not series:
        return None
    keys = list(series)[:max_gates]
    cols = min(4, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = _figure(4 * cols, 2.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for op, points in series[key].items():
            ax.plot([e for e, _ in points], [p for _, p in points], marker=".", label=op)
        ax.set_title(key, fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path, dpi=110)


def _save(fig, path: str, dpi: int) -> str:
    import io

    import matplotlib

    fmt = os.path.splitext(path)[1][1:].lower()
    if fmt not in _FORMATS:
        raise GraphError(f"{path}: cannot draw to format {fmt!r}; the file name ends in one "
                         f"of {['.' + f for f in _FORMATS]}")
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG keeps its labels as text
        fig.savefig(buf, dpi=dpi, format=fmt)
    atomic_write(path, buf.getvalue())  # a killed drawing leaves no half picture
    return path
