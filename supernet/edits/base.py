"""Edit records: the four neural operators as small, serializable data.

An edit changes a graph (``apply_graph``) and, when given, the module compiled from it
(``apply_module``), carrying surviving weights over and initializing what it creates by a
named policy. Each edit records everything needed to replay it exactly, including the seed
of any random initialization.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any, ClassVar

from supernet.errors import EditError, SerializationError, SupernetError

__all__ = ["Edit", "EditResult", "OPERATORS", "register_edit", "edit_from_dict", "target_graph",
           "apply_edit"]

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


def apply_edit(graph, edit: Edit, module=None, optimizers=(), log=None,
               rng: random.Random | None = None) -> EditResult:
    """Apply ``edit`` to ``graph`` in place, and to ``module`` and ``optimizers`` if given.

    A missing seed is drawn (from ``rng``) and stored in the record before it is logged, so
    that the log replays bitwise. If the edit fails (on the graph, or on the module because
    the new structure does not fit), the graph is left as it was and nothing is logged.
    """
    if any(f.name == "seed" for f in dataclasses.fields(edit)) and edit.seed is None:
        edit = dataclasses.replace(edit, seed=(rng or random).getrandbits(62))
    if module is not None and module.is_stale():
        module.check_fresh()  # raises or recompiles, by the module's choice
    saved = edit.snapshot(graph) if module is not None else None
    edit.apply_graph(graph)
    report = {}
    if module is not None:
        try:
            report = edit.apply_module(module, optimizers) or {}
        except SupernetError:
            # e.g. the new structure does not fit downstream shapes: leave graph as it was
            if saved is not None:
                edit.restore(graph, saved)
            raise
    if log is not None:
        log.append(edit)
    return EditResult(edit, graph, module, True, report)
