"""Edit records: the four neural operators as small, serializable data.

An edit changes a graph (``apply_graph``) and, when given, the module compiled from it
(``apply_module``), carrying surviving weights over and initializing what it creates by a
named policy. Each edit records everything needed to replay it exactly, including the seed
of any random initialization.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import EditError, SerializationError

__all__ = ["Edit", "EditResult", "OPERATORS", "register_edit", "edit_from_dict", "target_graph"]

OPERATORS = ("neuron_creation", "neuron_removal", "synaptogenesis", "synaptic_pruning")

_KINDS: dict[str, type["Edit"]] = {}


def register_edit(cls: type["Edit"]) -> type["Edit"]:
    """Class decorator: make an edit kind loadable by :func:`edit_from_dict`."""
    if cls.operator not in OPERATORS:
        raise EditError(f"{cls.__name__}.operator must be one of {OPERATORS}")
    _KINDS[cls.kind] = cls
    return cls


@dataclass
class Edit:
    """Base class of edit records.

    Attributes:
        kind: the record's name in logs (class attribute).
        operator: which of the four neural operators it is (class attribute).
    """

    kind: ClassVar[str] = "edit"
    operator: ClassVar[str] = ""

    def apply_graph(self, graph) -> None:
        raise NotImplementedError

    def apply_module(self, module, optimizers=()) -> dict:
        raise NotImplementedError

    def snapshot(self, graph):
        """State needed to undo :meth:`apply_graph` if the module side fails (or None)."""
        return None

    def restore(self, graph, snapshot) -> None:
        """Undo :meth:`apply_graph` from :meth:`snapshot`'s value."""

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out


def _plain(value):
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def edit_from_dict(data: dict) -> Edit:
    """Rebuild an edit record from :meth:`Edit.to_dict` output."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in _KINDS:
        raise SerializationError(f"unknown edit kind {kind!r}; known kinds: {sorted(_KINDS)}")
    cls = _KINDS[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SerializationError(f"edit {kind!r} has unknown field(s) {unknown}")
    return cls(**data)


@dataclass
class EditResult:
    """What an edit did (as ``torch.fx`` ``PassResult``).

    Attributes:
        edit: the record applied (with its seed filled in).
        graph: the edited graph.
        module: the updated module, if one was given.
        modified: whether anything changed.
        report: module-side details: ops or tensors built, removed, resized.
    """

    edit: Edit
    graph: Any
    module: Any = None
    modified: bool = True
    report: dict = dataclasses.field(default_factory=dict)


def target_graph(graph, cell: str | None):
    """``graph`` itself, or its cell template ``cell``."""
    if cell is None:
        return graph
    try:
        return graph.cells[cell]
    except KeyError:
        raise EditError(
            f"{graph.name}: no cell template {cell!r}; templates: {sorted(graph.cells)}"
        ) from None
