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

from supernet.codec import decode_value, encode_value, to_node_link
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
    "remove_partial_writes",
    "save_graph",
    "save_tensors",
    "save_weights",
    "to_node_link",
    "write_graphml",
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
