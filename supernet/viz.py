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

__all__ = ["draw_cells", "draw_graph", "edge_labels_of", "layout", "plot_curves", "plot_gates"]

#: Graphs with more nodes are not drawn (unit levels stay readable up to a few hundred).
MAX_NODES = 400


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _edge_label(e: dict, weights=None) -> str:
    ops = e.get("ops")
    if ops is None:  # unit levels: the connection's kind
        return str(e.get("kind", ""))
    if not ops:
        return ""
    if len(ops) == 1:
        return ops[0]
    if weights is not None:
        best = max(range(len(ops)), key=lambda i: weights[i])
        return f"{ops[best]} ({weights[best]:.2f}) of {len(ops)}"
    return f"{len(ops)} candidates"


def layout(graph, layers=None) -> dict:
    """Node positions: one column per topological generation, its nodes spread
    vertically. Where an edge skips a generation (a DARTS cell's input from two cells back),
    single-node columns alternate above and below the middle, so that the long edge and
    its label do not lie on the short ones."""
    layers = list(nx.topological_generations(graph.nx)) if layers is None else layers
    column = {n: x for x, layer in enumerate(layers) for n in layer}
    skips = any(column[v] - column[u] > 1 for u, v in graph.nx.edges)
    pos = {}
    for x, layer in enumerate(layers):
        if skips and len(layer) == 1:
            pos[layer[0]] = (x, 0.4 if x % 2 else -0.4)
            continue
        for y, node in enumerate(sorted(layer, key=str)):
            pos[node] = (x, (len(layer) - 1) / 2 - y)
    return pos


def edge_labels_of(graph, weights: dict | None = None) -> dict:
    """``(u, v) -> label``: the op of a decided edge, the strongest candidate (with
    ``weights``) or the candidate count of a gate, the connection kind at the unit levels,
    and for an edge into a cell call the template input it feeds (``s0``, ``s1``)."""
    weights = weights or {}
    out = {}
    for u, v, e in graph.nx.edges(data=True):
        d = graph.nx.nodes[v]
        if e.get("ops") == [] and d.get("kind") == "call" and d.get("cell") in graph.cells:
            inputs = graph.cells[d["cell"]].inputs
            port = e.get("port", 0)
            out[(u, v)] = inputs[port] if 0 <= port < len(inputs) else f"input {port}"
        else:
            out[(u, v)] = _edge_label(e, weights.get(f"{u}->{v}"))
    return out


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
    pos = layout(graph, layers)
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
    edge_labels = edge_labels_of(graph, weights)
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


def plot_curves(history: dict, path: str) -> str | None:
    """Loss and accuracy over the epochs of a run's ``history`` (``{"search": records,
    "train": records}``, as ``history.json`` holds them): the search's train and validation
    figures and the final training's, side by side; ``None`` when there is no epoch."""
    search, train = history.get("search") or [], history.get("train") or []
    panels = [(name, recs, keys) for name, recs, keys in (
        ("search", search, (("train_loss", "train_acc", "train"), ("val_loss", "val_acc", "val"),
                            (None, "eval_acc", "eval"))),
        ("final training", train, (("loss", "acc", "train"), (None, "val_acc", "val"))))
        if recs]
    if not panels:
        return None
    fig = _figure(4.2 * len(panels), 5.2)
    axes = fig.subplots(2, len(panels), squeeze=False)
    for col, (name, recs, keys) in enumerate(panels):
        for row, (which, unit) in enumerate(((0, "loss"), (1, "accuracy"))):
            ax = axes[row][col]
            for key_loss, key_acc, label in keys:
                key = (key_loss, key_acc)[which]
                points = [(r["epoch"], r[key]) for r in recs
                          if key is not None and r.get(key) is not None]
                if points:
                    ys = [100 * y for _, y in points] if which else [y for _, y in points]
                    ax.plot([e for e, _ in points], ys, marker=".", label=label)
            ax.set_title(f"{name}: {unit}", fontsize=9)
            ax.set_xlabel("epoch", fontsize=7)
            ax.set_ylabel("%" if which else "loss", fontsize=7)
            ax.tick_params(labelsize=6)
            if ax.lines:
                ax.legend(fontsize=6)
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
