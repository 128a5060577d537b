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


def decode_value(value: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    import scipy.sparse as sp

    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__sparse__" in value:
        dtype = np.dtype(value["dtype"])
        row = np.asarray(value["row"], dtype=np.int64)
        col = np.asarray(value["col"], dtype=np.int64)
        data = (np.ones(len(row), dtype) if value["data"] is None
                else np.asarray(value["data"], dtype))
        return sp.coo_array((data, (row, col)), shape=tuple(value["shape"])).tocsr()
    if "__ndarray__" in value:
        return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
    if "__tuple__" in value:
        return tuple(decode_value(v) for v in value["__tuple__"])
    if "__range__" in value:
        return range(*value["__range__"])
    return {k: decode_value(v) for k, v in value.items()}


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
