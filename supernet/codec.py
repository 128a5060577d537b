"""The JSON value codec of graph files: attribute values JSON cannot tell apart (tuples,
ranges, numpy arrays, scipy.sparse masks) tagged on the way out and restored on the way in,
and a graph as a node-link dict. Reading files is :mod:`supernet.io`'s job."""

from __future__ import annotations

from typing import Any

import numpy as np

from supernet.errors import SerializationError

__all__ = ["to_node_link", "encode_value", "decode_value", "FORMAT_VERSION"]

FORMAT_VERSION = 1


# ---------------------------------------------------------------------- value encoding
def encode_value(value: Any) -> Any:
    """Make ``value`` JSON-serializable, tagging types JSON cannot tell apart."""
    import scipy.sparse as sp

    if sp.issparse(value):
        coo = sp.coo_array(value)
        row, col = coo.row, coo.col
        if coo.dtype == bool:  # only True entries are written: a stored False would read back True
            row, col = row[coo.data], col[coo.data]
        return {
            "__sparse__": "coo",
            "shape": list(coo.shape),
            "row": row.tolist(),
            "col": col.tolist(),
            "dtype": str(coo.dtype),
            "data": coo.data.tolist() if coo.dtype != bool else None,
        }
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(v) for v in value]}
    if isinstance(value, dict):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, range):
        return {"__range__": [value.start, value.stop, value.step]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise SerializationError(
        f"cannot serialize a {type(value).__name__} attribute; graphs hold JSON data, "
        "scipy.sparse matrices and numpy arrays only"
    )


#: The most rows a sparse mask of a graph file may have (the units of one node).
MAX_ROWS = 2 ** 24

#: Kinds of dtype an array or a sparse mask of a graph file may have: booleans, numbers and
#: unicode text (no python objects, raw bytes or records).
_DTYPE_KINDS = "biufcU"


def decode_value(value: Any, where: str = "value") -> Any:
    """Inverse of :func:`encode_value`.

    A tagged value that does not hold what its tag says (a sparse matrix whose indices fall
    outside its shape, an array of a dtype graphs never hold, a range of non-integers)
    raises a :class:`SerializationError` naming ``where`` it was found.

    Examples:
        >>> decode_value({"__tuple__": [1, {"__range__": [0, 4, 2]}]})
        (1, range(0, 4, 2))
        >>> decode_value({"units": {"__ndarray__": [1, 2], "dtype": "object"}}, "node 'h'")
        Traceback (most recent call last):
        ...
        supernet.errors.SerializationError: node 'h'.units: an array of dtype 'object'; ...
    """
    if isinstance(value, list):
        return [decode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if "__sparse__" in value:
        return _decode_sparse(value, where)
    if "__ndarray__" in value:
        dtype = _dtype(value.get("dtype"), where)
        try:
            return np.asarray(value["__ndarray__"], dtype=dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(
                f"{where}: not an array of {dtype} ({_first_line(exc)})") from None
    if "__tuple__" in value:
        items = value["__tuple__"]
        if not isinstance(items, list):
            raise SerializationError(f"{where}: a tuple is a list of items, got {items!r:.80}")
        return tuple(decode_value(v, f"{where}[{i}]") for i, v in enumerate(items))
    if "__range__" in value:
        args = value["__range__"]
        if not isinstance(args, list) or not 1 <= len(args) <= 3 or not all(
                _is_int(a) for a in args) or (len(args) == 3 and args[2] == 0):
            raise SerializationError(
                f"{where}: a range is [start, stop, step] of integers (step not 0), got "
                f"{args!r:.80}")
        return range(*args)
    return {k: decode_value(v, f"{where}.{k}") for k, v in value.items()}


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _dtype(name, where: str, kinds: str = _DTYPE_KINDS) -> np.dtype:
    try:
        dtype = np.dtype(name) if isinstance(name, str) else None
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.kind not in kinds or dtype.itemsize > 1024:
        what = "booleans, numbers or short text" if "U" in kinds else "booleans or numbers"
        raise SerializationError(
            f"{where}: an array of dtype {name!r:.40}; graph files hold arrays of {what}")
    return dtype


def _decode_sparse(value: dict, where: str):
    """A ``scipy.sparse`` CSR array from its tagged COO form, every field checked."""
    import scipy.sparse as sp

    if value.get("__sparse__") != "coo":
        raise SerializationError(f"{where}: unknown sparse format {value.get('__sparse__')!r}; "
                                 "graph files hold 'coo'")
    missing = [k for k in ("shape", "row", "col", "dtype") if k not in value]
    if missing:
        raise SerializationError(f"{where}: a sparse matrix without {missing}")
    shape = value["shape"]
    if not isinstance(shape, list) or len(shape) != 2 or not all(
            _is_int(n) and 0 <= n < 2 ** 62 for n in shape):
        raise SerializationError(f"{where}: a sparse matrix's shape is [rows, cols] of "
                                 f"non-negative ints, got {shape!r:.80}")
    if shape[0] > MAX_ROWS:  # its CSR form holds one offset per row
        raise SerializationError(f"{where}: a sparse matrix of {shape[0]} rows; graph files "
                                 f"hold at most {MAX_ROWS} units per node")
    dtype = _dtype(value["dtype"], where, "biuf")
    index = {}
    for key in ("row", "col"):
        items = value[key]
        if not isinstance(items, list):
            raise SerializationError(f"{where}: sparse {key} indices are a list of ints, got "
                                     f"{items!r:.80}")
        odd = next((k for k, i in enumerate(items) if not _is_int(i)), None)
        if odd is not None:
            raise SerializationError(f"{where}: sparse {key} index [{odd}] is "
                                     f"{items[odd]!r:.60}, not an int")
        bound = shape[0] if key == "row" else shape[1]
        bad = [i for i in items if not 0 <= i < bound]
        if bad:
            raise SerializationError(
                f"{where}: sparse {key} index {bad[0]} is outside the shape {shape}")
        index[key] = np.asarray(items, dtype=np.int64)
    n = len(index["row"])
    if len(index["col"]) != n:
        raise SerializationError(
            f"{where}: a sparse matrix with {n} row but {len(index['col'])} column indices")
    data = value.get("data")
    if data is None:
        data = np.ones(n, dtype)
    else:
        if not isinstance(data, list) or len(data) != n:
            raise SerializationError(f"{where}: sparse data is a list of one value per index "
                                     f"({n}), got {data!r:.80}")
        try:
            data = np.asarray(data, dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(
                f"{where}: sparse data is not of {dtype} ({_first_line(exc)})") from None
        if data.ndim != 1:
            raise SerializationError(f"{where}: sparse data is a flat list of numbers")
    if n and np.unique(np.stack([index["row"], index["col"]]), axis=1).shape[1] != n:
        raise SerializationError(f"{where}: a sparse matrix lists an entry twice")
    return sp.coo_array((data, (index["row"], index["col"])), shape=tuple(shape)).tocsr()


# ---------------------------------------------------------------------- node-link JSON
def to_node_link(graph) -> dict:
    """The graph as a node-link dict (JSON-serializable), cell templates included."""
    g = graph.nx
    return {
        "format": "supernet-node-link",
        "format_version": FORMAT_VERSION,
        "version": graph.version,
        "graph": encode_value(dict(g.graph)),
        "nodes": [{"id": n, **encode_value(dict(d))} for n, d in g.nodes(data=True)],
        "edges": [{"source": u, "target": v, **encode_value(dict(d))}
                  for u, v, d in g.edges(data=True)],
        "cells": {name: to_node_link(c) for name, c in graph.cells.items()},
    }
