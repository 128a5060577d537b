"""Saving and loading graphs and weights.

Graphs round-trip exactly through node-link JSON and GraphML (structure, attributes, node
order, cell templates and unit-level sparse connectivity). Weights are saved beside them as
a ``state_dict`` in a safetensors file (:func:`save_tensors`): the tensors, with the rest of
a checkpoint as JSON in the header and SHA-256 checksums of both, so loading runs no code and
a damaged file fails naming it. Every file is written atomically: a crash mid-write leaves
the previous file intact.

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

from supernet.codec import FORMAT_VERSION, decode_value, encode_value, to_node_link
from supernet.errors import GraphError, SerializationError
from supernet.graph import Graph

__all__ = [
    "atomic_save",
    "atomic_write",
    "convert_pickle",
    "file_part",
    "file_sha256",
    "from_node_link",
    "is_pickle_file",
    "load_graph",
    "load_tensors",
    "load_weights",
    "path_inside",
    "read_graphml",
    "read_json",
    "remove_partial_writes",
    "save_graph",
    "save_tensors",
    "save_weights",
    "to_node_link",
    "write_graphml",
]

def from_node_link(data: dict, where: str = "document"):
    """Inverse of :func:`to_node_link`.

    Refuses, with a :class:`SerializationError` naming the entry (``nodes[3]``, ``edges[5]
    p0->n2``, ``cells['normal']``, a key), a document that is not what :func:`to_node_link`
    writes: a missing or mistyped key, a node or an edge listed twice, an edge or a call to
    what the document does not hold.

    Examples:
        >>> from_node_link({"format": "supernet-node-link", "graph": {"level": "layer"},
        ...                 "nodes": [{"id": "x", "kind": "input"}, {"id": "x"}],
        ...                 "edges": []})
        Traceback (most recent call last):
        ...
        supernet.errors.SerializationError: document: nodes[1]: node 'x' appears twice...
    """
    try:
        return _from_node_link(data, where)
    except RecursionError:
        raise SerializationError(f"{where}: values nested too deep to be graph attributes") \
            from None


def _from_node_link(data, where: str):
    if not isinstance(data, dict) or data.get("format") != "supernet-node-link":
        raise SerializationError(
            f"{where}: not a supernet node-link document (missing \"format\": "
            "\"supernet-node-link\")"
        )
    version = data.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or not \
            1 <= version <= FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise SerializationError(
            f"{where}: format_version {version!r:.40}; this supernet reads versions 1 to "
            f"{FORMAT_VERSION}" + ("; the file was written by a newer supernet" if newer else ""))
    for key, kind in (("graph", dict), ("nodes", list), ("edges", list)):
        if not isinstance(data.get(key), kind):
            raise SerializationError(f"{where}: key {key!r} must hold a {kind.__name__}, got "
                                     f"{_kind(data.get(key)) if key in data else 'nothing'}")
    attrs = decode_value(data["graph"], f"{where}: graph")
    nodes, seen = [], set()
    for i, node in enumerate(data["nodes"]):
        at = f"{where}: nodes[{i}]"
        if not isinstance(node, dict) or not isinstance(node.get("id"), str):
            raise SerializationError(f"{at}: a node is an object with a string 'id', got "
                                     f"{node!r:.80}")
        node = dict(node)
        n = node.pop("id")
        if n in seen:
            raise SerializationError(f"{at}: node {n!r} appears twice in the document")
        seen.add(n)
        nodes.append((n, decode_value(node, f"{at} {n!r}")))
    edges, pairs = [], set()
    for i, edge in enumerate(data["edges"]):
        at = f"{where}: edges[{i}]"
        if not isinstance(edge, dict) or not all(
                isinstance(edge.get(k), str) for k in ("source", "target")):
            raise SerializationError(f"{at}: an edge is an object with string 'source' and "
                                     f"'target', got {edge!r:.80}")
        edge = dict(edge)
        u, v = edge.pop("source"), edge.pop("target")
        for end in (u, v):
            if end not in seen:
                raise SerializationError(f"{at}: edge {u}->{v} names unknown node {end!r}")
        if (u, v) in pairs:
            raise SerializationError(f"{at}: edge {u}->{v} appears twice in the document")
        pairs.add((u, v))
        edges.append((u, v, decode_value(edge, f"{at} {u}->{v}")))
    cells = data.get("cells", {})
    if not isinstance(cells, dict):
        raise SerializationError(f"{where}: key 'cells' must hold an object of cell templates "
                                 f"by name, got {_kind(cells)}")
    cells = {name: from_node_link(cell, f"{where}: cells[{name!r}]")
             for name, cell in cells.items()}
    version = data.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise SerializationError(f"{where}: key 'version' must be a non-negative int, got "
                                 f"{version!r:.40}")
    try:
        return _from_parts(attrs, nodes, edges, cells, version)
    except SerializationError as exc:
        raise SerializationError(f"{where}: {exc}") from None


def _kind(value) -> str:
    return f"a {type(value).__name__} {value!r:.60}"


def save_graph(graph, path: str) -> None:
    """Write ``graph`` as node-link JSON (atomically)."""
    text = json.dumps(to_node_link(graph), indent=1)
    atomic_write(path, text.encode())


def load_graph(path: str):
    """Read a graph written by :func:`save_graph`.

    Every failure is a :class:`SerializationError` that names the file, and the entry of it
    at fault (see :func:`from_node_link`).
    """
    return from_node_link(read_json(path, "graph file"), path)


def _read_bytes(path: str, what: str) -> bytes:
    """The bytes of ``path``; a :class:`SerializationError` naming it when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise SerializationError(f"{path}: a directory, not a {what}") from None
    except OSError as exc:
        raise SerializationError(f"cannot read {what} {path!r}: {exc.strerror or exc}") \
            from None


def read_json(path: str, what: str = "file"):
    """The JSON document in ``path``; a :class:`SerializationError` naming the file (and the
    line and column of a syntax error) when it cannot be read or is not JSON."""
    raw = _read_bytes(path, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SerializationError(f"{path}: not a {what}: byte {exc.start} is not UTF-8 "
                                 "text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SerializationError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, "
                                 f"column {exc.colno}") from None
    except RecursionError:
        raise SerializationError(f"{path}: not a {what}: its JSON is nested too deep") \
            from None
    except ValueError as exc:  # an integer of more digits than python reads
        raise SerializationError(f"{path}: not a {what}: {exc}") from None


# ---------------------------------------------------------------------- GraphML
_JSON_TAG = "json:"


def _to_graphml_value(value):
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, str) and not value.startswith(_JSON_TAG):
        return value
    return _JSON_TAG + json.dumps(encode_value(value))


def _from_graphml_value(value, where: str):
    if isinstance(value, str) and value.startswith(_JSON_TAG):
        try:
            return decode_value(json.loads(value[len(_JSON_TAG):]), where)
        except json.JSONDecodeError as exc:
            raise SerializationError(f"{where}: its {_JSON_TAG} value is not JSON: {exc.msg} at "
                                     f"character {exc.pos}") from None
        except ValueError as exc:  # an integer of more digits than python reads
            raise SerializationError(f"{where}: its {_JSON_TAG} value cannot be read: {exc}") \
                from None
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
    """Read a graph written by :func:`write_graphml`.

    Every failure is a :class:`SerializationError` that names the file and the node, edge
    or key at fault; a node id or an edge listed twice is refused (networkx would merge
    them).
    """
    data = _read_bytes(path, "GraphML file")
    try:
        return _read_graphml(data, path)
    except RecursionError:
        raise SerializationError(f"{path}: values nested too deep to be graph attributes") \
            from None


def _graphml_check_ids(data: bytes, path: str) -> None:
    """Refuse a node id or an edge (source, target) listed twice in the file, and an edge
    to a node it does not list (networkx would merge the first and add the last)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(data)
    except (ET.ParseError, LookupError, ValueError) as exc:  # LookupError: an unknown encoding
        raise SerializationError(f"{path}: malformed GraphML: {exc}") from None
    nodes, edges = set(), []
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
        if tag == "node":
            n = el.get("id")
            if n in nodes:
                raise SerializationError(f"{path}: node id {n!r} appears twice")
            nodes.add(n)
        elif tag == "edge":
            edges.append((el.get("source"), el.get("target")))
    seen = set()
    for u, v in edges:
        if (u, v) in seen:
            raise SerializationError(f"{path}: edge {u}->{v} appears twice")
        seen.add((u, v))
        for end in (u, v):
            if end not in nodes:
                raise SerializationError(f"{path}: edge {u}->{v} names node {end!r}, which "
                                         "the file does not list")


def _read_graphml(data: bytes, path: str):
    _graphml_check_ids(data, path)
    try:
        raw = nx.parse_graphml(data, force_multigraph=False)
    except Exception as exc:  # noqa: BLE001 - networkx raises many kinds on a damaged file
        raise SerializationError(f"{path}: malformed GraphML ({_one_line(exc)})") from None
    if not raw.is_directed() or raw.is_multigraph():
        raise SerializationError(f"{path}: not a supernet GraphML file (an undirected graph or "
                                 "a multigraph; supernet writes one directed graph)")
    attrs = {k: _from_graphml_value(v, f"graph key {k!r}") for k, v in raw.graph.items()}
    version = attrs.pop("supernet_version", 0)
    cells = attrs.pop("supernet_cells", {})
    if "level" not in attrs:
        raise SerializationError(f"{path}: not a supernet GraphML file (no 'level' attribute)")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise SerializationError(f"{path}: graph key 'supernet_version' must be a "
                                 f"non-negative int, got {version!r:.40}")
    if not isinstance(cells, dict):
        raise SerializationError(f"{path}: graph key 'supernet_cells' must hold cell templates "
                                 f"by name, got {_kind(cells)}")
    attrs.pop("node_default", None), attrs.pop("edge_default", None)
    try:
        nodes = [(n, {k: _from_graphml_value(v, f"node {n!r} key {k!r}")
                      for k, v in d.items()}) for n, d in raw.nodes(data=True)]
        edges = [(u, v, {k: _from_graphml_value(val, f"edge {u}->{v} key {k!r}")
                         for k, val in d.items()}) for u, v, d in raw.edges(data=True)]
        cells = {name: from_node_link(cell, f"graph key 'supernet_cells'[{name!r}]")
                 for name, cell in cells.items()}
        return _from_parts(attrs, nodes, edges, cells, version)
    except SerializationError as exc:
        raise SerializationError(f"{path}: {exc}") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _from_parts(attrs, nodes, edges, cells, version):
    """:meth:`Graph.from_parts`, its refusals as :class:`SerializationError`."""
    try:
        return Graph.from_parts(attrs, nodes, edges, cells, version)
    except GraphError as exc:
        raise SerializationError(f"the file does not hold a valid graph: {exc}") from exc


# ---------------------------------------------------------------------- files
_TMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``; the file gets the
    mode a plain ``open(path, "w")`` would give it (``0o666`` less the user's umask)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise SerializationError(f"cannot write {path!r}: {exc}") from exc


def file_sha256(path: str) -> tuple[str, int]:
    """``(hex SHA-256, size in bytes)`` of the file at ``path``."""
    import hashlib

    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def remove_partial_writes(directory: str) -> list[str]:
    """Delete the temporary files (``.tmp-*``) that a process killed in the middle of an
    :func:`atomic_write` left in ``directory`` and its subfolders; returns their paths.
    Nothing else is touched: a finished file is never a temporary one."""
    removed = []
    if not os.path.isdir(directory):
        return removed
    for root, _, files in os.walk(directory):
        for name in files:
            if name.startswith(_TMP_PREFIX):
                path = os.path.join(root, name)
                try:
                    os.unlink(path)
                    removed.append(path)
                except OSError:  # gone already, or not ours to delete
                    pass
    return removed


_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
             *(f"lpt{i}" for i in range(10))}


def file_part(name, what: str = "name") -> str:
    """``name`` (a graph, cell or node name) as one safe part of a file name: letters,
    digits, ``.``, ``_``, ``-`` kept, anything else (separators, ``..``, control characters)
    replaced by ``_``; a name that had to change, or that is reserved on some system
    (``CON``, ``NUL``, ``COM1``...), gets a short hash of the original so that two names never
    map to one file.

    Examples:
        >>> file_part("normal")
        'normal'
        >>> file_part("a/../../escaped")[:16]
        'a_.._.._escaped-'
    """
    import hashlib

    text = str(name)
    if not text:
        raise SerializationError(f"an empty {what} cannot name a file")
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in text)
    safe = safe.lstrip(".") or "_"
    if len(safe) > 100:
        safe = safe[:100]
    if safe != text or safe.split(".")[0].lower() in _RESERVED:
        safe += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return safe


def path_inside(directory: str, name: str) -> str:
    """``directory/name``, refused (a :class:`SerializationError`) when it would resolve
    outside ``directory`` (an absolute ``name``, ``..``, or a link pointing elsewhere)."""
    base = os.path.realpath(directory)
    path = os.path.realpath(os.path.join(base, name))
    if os.path.commonpath([base, path]) != base or path == base:
        raise SerializationError(f"{name!r}: a file name that leaves the folder {directory!r}")
    return path


def atomic_save(obj, path: str) -> None:
    """``torch.save(obj, path)``, atomically (a pickle: for files nobody else loads)."""
    import torch

    buf = _io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, buf.getvalue())


# ---------------------------------------------------------------- tensor files, no pickle
_TAG = "__sn__"  # key of a tagged JSON value: {"__sn__": kind, "v": ...}
_META_KEY = "supernet"  # the one metadata entry of a tensor file
_ZIP, _PICKLE = b"PK\x03\x04", (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def _tensor_digest(tensors: dict) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _encode_tree(obj, tensors: dict, where: str):
    import torch

    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.bool_, np.integer, np.floating)):
        return obj.item()
    if torch.is_tensor(obj):
        name = f"t{len(tensors)}"
        tensors[name] = obj.detach().cpu().contiguous().clone()
        return {_TAG: "tensor", "v": name}
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise SerializationError(f"cannot save {where}: an array of python objects")
        name = f"t{len(tensors)}"
        tensors[name] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {_TAG: "ndarray", "v": name}
    if isinstance(obj, (list, tuple)):
        items = [_encode_tree(x, tensors, f"{where}[{i}]") for i, x in enumerate(obj)]
        return items if isinstance(obj, list) else {_TAG: "tuple", "v": items}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k != _TAG for k in obj):
            return {k: _encode_tree(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        return {_TAG: "dict", "v": [[_encode_tree(k, tensors, f"{where} key"),
                                     _encode_tree(v, tensors, f"{where}[{k!r}]")]
                                    for k, v in obj.items()]}
    raise SerializationError(f"cannot save {where}: a {type(obj).__name__} is no tensor, "
                             "array, number, string, list, tuple or dict")


def _decode_tree(obj, tensors: dict, path: str):
    if isinstance(obj, list):
        return [_decode_tree(x, tensors, path) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if _TAG not in obj:
        return {k: _decode_tree(v, tensors, path) for k, v in obj.items()}
    kind, value = obj.get(_TAG), obj.get("v")
    if kind in ("tensor", "ndarray"):
        if not isinstance(value, str) or value not in tensors:
            raise SerializationError(f"{path}: refers to a tensor {value!r} the file lacks")
        t = tensors[value]
        return t if kind == "tensor" else t.numpy()
    if kind == "tuple" and isinstance(value, list):
        return tuple(_decode_tree(x, tensors, path) for x in value)
    if kind == "dict" and isinstance(value, list) and all(
            isinstance(kv, list) and len(kv) == 2 for kv in value):
        out = {}
        for k, v in value:
            k = _decode_tree(k, tensors, path)
            try:
                out[k] = _decode_tree(v, tensors, path)
            except TypeError as exc:  # an unhashable key
                raise SerializationError(f"{path}: a dict key of type "
                                         f"{type(k).__name__}") from exc
        return out
    raise SerializationError(f"{path}: unknown tagged value {kind!r}")


def save_tensors(tree, path: str, kind: str) -> None:
    """Write ``tree`` (dicts, lists, tuples, numbers, strings, tensors, numpy arrays) to
    ``path`` atomically, as one safetensors file: the tensors in its data, the rest as JSON in
    its header, with ``kind`` and a SHA-256 of both. Loading it runs no code
    (:func:`load_tensors`)."""
    import hashlib

    from safetensors.torch import save as st_save

    tensors: dict = {}
    body = json.dumps(_encode_tree(tree, tensors, kind), allow_nan=True, separators=(",", ":"))
    meta = {"format": "supernet-tensors", "kind": kind, "tree": body,
            "tree_sha256": hashlib.sha256(body.encode()).hexdigest(),
            "tensors_sha256": _tensor_digest(tensors)}
    # one metadata entry: safetensors keeps several in a hash map, whose order (and so the
    # file's bytes) would change from one process to the next
    meta = {_META_KEY: json.dumps(meta, separators=(",", ":"))}
    atomic_write(path, st_save(tensors, metadata=meta))


def is_pickle_file(path: str) -> bool:
    """Whether ``path`` starts like a ``torch.save`` zip or a raw pickle (a file that runs code
    from itself when loaded by ``torch.load(weights_only=False)``)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(_ZIP) or head[:2] in _PICKLE


def load_tensors(path: str, kind: str):
    """Read a file of :func:`save_tensors` of this ``kind``, checking its checksums.

    Fails with a :class:`~supernet.errors.SerializationError` naming the file when it is
    missing, damaged (any flipped bit of the tensors or the header), of another kind, or a
    pickle (which is never unpickled here).
    """
    import hashlib
    import struct

    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise SerializationError(f"cannot read {path!r}: {exc.strerror or exc}") from exc
    if raw.startswith(_ZIP) or raw[:2] in _PICKLE:
        raise SerializationError(
            f"{path}: a pickle file (torch.save), not a supernet tensor file; loading a pickle "
            "runs code from the file, so it is not loaded. If you wrote it yourself with an "
            "older version, convert it with supernet.io.convert_pickle(path, kind, "
            "trust=True)")
    try:
        tensors = st_load(raw)
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        meta = header.get("__metadata__") or {}
        if _META_KEY in meta:  # else the layout of files written before it was one entry
            meta = json.loads(meta[_META_KEY])
        if not isinstance(meta, dict):
            raise ValueError("the metadata is not a mapping")
    except (SafetensorError, ValueError, struct.error, UnicodeDecodeError, MemoryError,
            OverflowError, TypeError, AttributeError) as exc:
        raise SerializationError(f"{path}: damaged or not a supernet tensor file "
                                 f"({type(exc).__name__}: {exc})") from exc
    if meta.get("format") != "supernet-tensors":
        raise SerializationError(f"{path}: a safetensors file, but not one supernet wrote "
                                 "(no format 'supernet-tensors' in its header)")
    if meta.get("kind") != kind:
        raise SerializationError(f"{path}: holds {meta.get('kind')!r}, not {kind!r}")
    body = meta.get("tree", "")
    if hashlib.sha256(body.encode()).hexdigest() != meta.get("tree_sha256") or \
            _tensor_digest(tensors) != meta.get("tensors_sha256"):
        raise SerializationError(f"{path}: damaged: its contents do not match their SHA-256 "
                                 "checksums")
    try:
        tree = json.loads(body)
    except ValueError as exc:
        raise SerializationError(f"{path}: damaged header ({exc})") from exc
    return _decode_tree(tree, tensors, path)


def convert_pickle(path: str, kind: str, trust: bool = False, out: str | None = None) -> str:
    """Rewrite a pickle file of an older version (``torch.save``) as a tensor file.

    Unpickling runs code from the file: pass ``trust=True`` only for a file you wrote.
    Writes ``out`` (default: ``path`` with the suffix ``.safetensors``) and returns it; never
    overwrites ``path``.
    """
    import torch

    if not trust:
        raise SerializationError(
            f"{path}: converting a pickle runs code from the file; pass trust=True only for a "
            "file you wrote yourself")
    out = out or os.path.splitext(path)[0] + ".safetensors"
    if os.path.abspath(out) == os.path.abspath(path):
        raise SerializationError(f"{path}: the converted file needs another name than the "
                                 "pickle it comes from")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling raises anything
        raise SerializationError(f"cannot read {path!r} ({type(exc).__name__}: {exc})") from exc
    save_tensors(obj, out, kind)
    return out


def save_weights(module, path: str) -> None:
    """Save ``module.state_dict()`` atomically as a tensor file (:func:`save_tensors`)."""
    save_tensors(dict(module.state_dict()), path, "weights")


def load_weights(module, path: str, strict: bool = True):
    """Load a state dict saved by :func:`save_weights` into ``module``; its checksums are
    checked and nothing in it runs (:func:`load_tensors`)."""
    import torch

    state = load_tensors(path, "weights")
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
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
