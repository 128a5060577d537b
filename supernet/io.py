"""Saving and loading graphs and weights.

Graphs round-trip exactly through node-link JSON and GraphML (structure, attributes, node
order, cell templates and unit-level sparse connectivity). Weights are saved beside them as
a ``state_dict`` and loaded with ``torch.load(weights_only=True)``. Every file is written
atomically: a crash mid-write leaves the previous file intact.

Examples:
    >>> import tempfile, os
    >>> from supernet import Graph
    >>> from supernet.io import save_graph, load_graph
    >>> g = Graph("layer", name="g"); g.add_input("x", channels=3)
    >>> g.add_node("h", channels=8); g.add_edge("x", "h", ["conv_3x3", "none"])
    >>> g.set_outputs(["h"])
    >>> path = os.path.join(tempfile.mkdtemp(), "g.json")
    >>> save_graph(g, path); load_graph(path).same_as(g)
    True
"""

from __future__ import annotations

import io as _io
import json
import os
import tempfile

import networkx as nx
import numpy as np

from supernet.codec import decode_value, encode_value, to_node_link
from supernet.errors import GraphError, SerializationError
from supernet.graph import Graph

__all__ = [
    "to_node_link",
    "from_node_link",
    "save_graph",
    "load_graph",
    "write_graphml",
    "read_graphml",
    "save_weights",
    "load_weights",
    "atomic_write",
    "atomic_save",
]

def from_node_link(data: dict):
    """Inverse of :func:`to_node_link`."""
    try:
        if not isinstance(data, dict) or data.get("format") != "supernet-node-link":
            raise SerializationError(
                "not a supernet node-link document (missing \"format\": \"supernet-node-link\")"
            )
        attrs = decode_value(data["graph"])
        nodes, seen = [], set()
        for node in data["nodes"]:
            node = dict(node)
            n = node.pop("id")
            if n in seen:
                raise SerializationError(f"node {n!r} appears twice in the document")
            seen.add(n)
            nodes.append((n, decode_value(node)))
        edges = []
        for edge in data["edges"]:
            edge = dict(edge)
            u, v = edge.pop("source"), edge.pop("target")
            for end in (u, v):
                if end not in seen:
                    raise SerializationError(f"edge {u}->{v} names unknown node {end!r}")
            edges.append((u, v, decode_value(edge)))
        cells = {name: from_node_link(cell) for name, cell in data.get("cells", {}).items()}
        return _from_parts(attrs, nodes, edges, cells, int(data.get("version", 0)))
    except SerializationError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SerializationError(f"malformed node-link document: {exc!r}") from exc


def save_graph(graph, path: str) -> None:
    """Write ``graph`` as node-link JSON (atomically)."""
    text = json.dumps(to_node_link(graph), indent=1)
    atomic_write(path, text.encode())


def load_graph(path: str):
    """Read a graph written by :func:`save_graph`."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as exc:
        raise SerializationError(f"cannot read graph file {path!r}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SerializationError(f"{path}: not valid JSON ({exc})") from exc
    try:
        return from_node_link(data)
    except SerializationError as exc:  # say which file is not a graph
        raise SerializationError(f"{path}: {exc}") from exc


# ---------------------------------------------------------------------- GraphML
_JSON_TAG = "json:"


def _to_graphml_value(value):
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, str) and not value.startswith(_JSON_TAG):
        return value
    return _JSON_TAG + json.dumps(encode_value(value))


def _from_graphml_value(value):
    if isinstance(value, str) and value.startswith(_JSON_TAG):
        return decode_value(json.loads(value[len(_JSON_TAG):]))
    return value


def _graphml_graph(graph) -> nx.DiGraph:
    g = graph.nx
    out = nx.DiGraph()
    out.graph.update({k: _to_graphml_value(v) for k, v in g.graph.items()})
    out.graph["supernet_version"] = graph.version
    out.graph["supernet_cells"] = _JSON_TAG + json.dumps(
        {k: to_node_link(c) for k, c in graph.cells.items()}
    )
    for n, d in g.nodes(data=True):
        out.add_node(n, **{k: _to_graphml_value(v) for k, v in d.items()})
    for u, v, d in g.edges(data=True):
        out.add_edge(u, v, **{k: _to_graphml_value(val) for k, val in d.items()})
    return out


def write_graphml(graph, path: str) -> None:
    """Write ``graph`` as GraphML; lists, dicts and sparse matrices become tagged JSON strings."""
    buf = _io.BytesIO()
    nx.write_graphml(_graphml_graph(graph), buf, named_key_ids=True)
    atomic_write(path, buf.getvalue())


def read_graphml(path: str):
    """Read a graph written by :func:`write_graphml`."""
    try:
        raw = nx.read_graphml(path, force_multigraph=False)
    except (OSError, nx.NetworkXError) as exc:
        raise SerializationError(f"cannot read GraphML {path!r}: {exc}") from exc
    except Exception as exc:  # the XML parser raises its own exception types
        raise SerializationError(f"{path}: malformed GraphML ({exc})") from exc
    attrs = {k: _from_graphml_value(v) for k, v in raw.graph.items()}
    version = int(attrs.pop("supernet_version", 0))
    cells = attrs.pop("supernet_cells", {})
    if "level" not in attrs:
        raise SerializationError(f"{path}: not a supernet GraphML file (no 'level' attribute)")
    attrs.pop("node_default", None), attrs.pop("edge_default", None)
    nodes = [(n, {k: _from_graphml_value(v) for k, v in d.items()})
             for n, d in raw.nodes(data=True)]
    edges = [(u, v, {k: _from_graphml_value(val) for k, val in d.items()})
             for u, v, d in raw.edges(data=True)]
    cells = {name: from_node_link(cell) for name, cell in cells.items()}
    try:
        return _from_parts(attrs, nodes, edges, cells, version)
    except SerializationError as exc:
        raise SerializationError(f"{path}: {exc}") from exc


def _from_parts(attrs, nodes, edges, cells, version):
    """:meth:`Graph.from_parts`, its refusals as :class:`SerializationError`."""
    try:
        return Graph.from_parts(attrs, nodes, edges, cells, version)
    except GraphError as exc:
        raise SerializationError(f"the file does not hold a valid graph: {exc}") from exc


# ---------------------------------------------------------------------- files
def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise SerializationError(f"cannot write {path!r}: {exc}") from exc


def atomic_save(obj, path: str) -> None:
    """``torch.save(obj, path)``, atomically."""
    import torch

    buf = _io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, buf.getvalue())


def save_weights(module, path: str) -> None:
    """Save ``module.state_dict()`` atomically."""
    atomic_save(module.state_dict(), path)


def load_weights(module, path: str, strict: bool = True):
    """Load a state dict saved by :func:`save_weights` (``weights_only=True``)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load and pickle raise a variety of types on bad bytes
        raise SerializationError(f"cannot load weights from {path!r}: {exc}") from exc
    if not isinstance(state, dict):
        raise SerializationError(
            f"{path}: holds a {type(state).__name__}, not a state dict of weights "
            "(save_weights writes one)"
        )
    try:
        return module.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise SerializationError(
            f"{path}: the weights do not fit the module (was it compiled from the same graph?): "
            f"{exc}"
        ) from exc
