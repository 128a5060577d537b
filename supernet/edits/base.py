"""Edit records: the four neural operators as small, serializable data.

An edit changes a graph (``apply_graph``) and, when given, the module compiled from it
(``apply_module``), carrying surviving weights over and initializing what it creates by a
named policy (:mod:`supernet.init`). Each edit records everything needed to replay it
exactly, including the seed of any random initialization. Records are data: applying one
leaves it as it was (what the graph step found is returned to the module step).
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from supernet.edits.undo import Undo
from supernet.errors import EditError, SerializationError
from supernet.registry import Registry

__all__ = ["Edit", "EditResult", "OPERATORS", "EDITS", "register_edit", "edit_from_dict",
           "target_graph", "apply_edit", "MAX_EDIT_INT", "MAX_EDIT_SIZE"]

OPERATORS = ("neuron_creation", "neuron_removal", "synaptogenesis", "synaptic_pruning")

#: Edit kinds loadable from logs, by :attr:`Edit.kind`.
EDITS: Registry[type["Edit"]] = Registry(
    "edit kind", hint="register one with @supernet.edits.register_edit")


def register_edit(cls: type["Edit"] | None = None, *, override: bool = False):
    """Class decorator: make an edit kind loadable by :func:`edit_from_dict`.

    A kind registered already is refused unless ``override=True``
    (``@register_edit(override=True)``).
    """
    if cls is None:
        return lambda c: register_edit(c, override=override)
    if cls.operator not in OPERATORS:
        raise EditError(f"{cls.__name__}.operator must be one of {OPERATORS}, got "
                        f"{cls.operator!r}")
    EDITS.register(cls.kind, cls, override=override)
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

    def apply_graph(self, graph) -> Any:
        """Change ``graph``; returns what :meth:`apply_module` needs to know of it."""
        raise NotImplementedError

    def apply_module(self, module, optimizers=(), applied: Any = None) -> dict:
        """Bring ``module`` (and ``optimizers``) in line with the edited graph;
        ``applied`` is what :meth:`apply_graph` returned. Returns a report."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


#: Bound of the integers of an edit record (ports, unit ids, taps); seeds are drawn below
#: ``2**64``.
MAX_EDIT_INT = 2 ** 31

#: Bound of the sizes an edit record sets: the units one edit creates (``count``), a width
#: or a channel count (a million new units took seconds, a billion would take all memory).
MAX_EDIT_SIZE = 2 ** 16
_SIZE_FIELDS = ("count", "width", "channels")

_FIELD_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
                "list": (list, tuple), "dict": (dict,), "None": (type(None),)}


def edit_from_dict(data: dict, where: str = "edit record") -> Edit:
    """Rebuild an edit record from :meth:`Edit.to_dict` output.

    Every field is checked against the record's annotation (``int | None``, ``list``, ...)
    before the record is made, and integers are bounded (sizes by :data:`MAX_EDIT_SIZE`, the
    others by :data:`MAX_EDIT_INT`, seeds below ``2**64``), so a damaged log fails here,
    naming ``where`` and the field.

    Examples:
        >>> edit_from_dict({"kind": "add_units", "node": "h1", "count": "2"}, "edits[0]")
        Traceback (most recent call last):
        ...
        supernet.errors.SerializationError: edits[0] (add_units): field 'count' must be int, got a str '2'
    """
    if not isinstance(data, dict):
        raise SerializationError(f"{where}: an edit record is an object with a 'kind', got "
                                 f"{data!r:.60}")
    data = dict(data)
    cls = EDITS.resolve(data.pop("kind", None), where)
    kind = cls.kind
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SerializationError(f"{where}: edit {kind!r} has unknown field(s) {unknown}")
    for name, value in data.items():
        hint = fields[name].type  # a string under ``from __future__ import annotations``
        _check_field(f"{where} ({kind})", name,
                     hint if isinstance(hint, str) else getattr(hint, "__name__", str(hint)),
                     value)
    return cls(**data)


def _check_field(where: str, name: str, annotation: str, value) -> None:
    """Refuse a value of a field that its annotation (as written) does not allow."""
    allowed = [t.strip() for t in annotation.replace("typing.", "").split("|")]
    types = tuple(t for a in allowed for t in _FIELD_TYPES.get(a.split("[")[0], (object,)))
    ok = isinstance(value, types) and not (isinstance(value, bool) and "bool" not in allowed)
    if not ok:
        raise SerializationError(f"{where}: field {name!r} must be {annotation}, got a "
                                 f"{type(value).__name__} {value!r:.60}")
    _check_content(where, name, value, 0)
    if isinstance(value, int) and not isinstance(value, bool):
        lo, hi = ((0, 2 ** 64 - 1) if name == "seed" else
                  (0, MAX_EDIT_SIZE) if name in _SIZE_FIELDS else (-MAX_EDIT_INT, MAX_EDIT_INT))
        if not lo <= value <= hi:
            raise SerializationError(f"{where}: field {name!r} is {value}, outside [{lo}, {hi}]")


def _check_content(where: str, name: str, value, depth: int) -> None:
    """Numbers finite and in bounds, containers at most a few levels deep."""
    if isinstance(value, float) and not math.isfinite(value):
        raise SerializationError(f"{where}: field {name!r} holds {value}, not a finite number")
    if isinstance(value, int) and not isinstance(value, bool) and depth and \
            abs(value) > MAX_EDIT_INT:
        raise SerializationError(f"{where}: field {name!r} holds {value}, outside "
                                 f"[{-MAX_EDIT_INT}, {MAX_EDIT_INT}]")
    if isinstance(value, (list, tuple, dict)):
        if depth >= 8:
            raise SerializationError(f"{where}: field {name!r} is nested more than 8 deep")
        for item in (value.values() if isinstance(value, dict) else value):
            _check_content(where, name, item, depth + 1)


@dataclass
class EditResult:
    """What an edit did (as ``torch.fx`` ``PassResult``).

    Attributes:
        edit: the record applied (with its seed filled in).
        graph: the edited graph.
        module: the updated module, if one was given.
        report: module-side details: ops or tensors built, removed, resized.
    """

    edit: Edit
    graph: Any
    module: Any = None
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

    A missing seed is drawn (from ``rng``) into a copy of the record before it is logged, so
    that the log replays bitwise. If the edit fails, on the graph or on the module (e.g. the
    new structure does not fit downstream shapes), everything is put back as it was (see
    :class:`supernet.edits.undo.Undo`): the graph and its version, every tensor and
    attribute of the module (its architecture parameters and relaxation too), and the
    optimizers' param groups and state; nothing is logged.
    """
    if any(f.name == "seed" for f in dataclasses.fields(edit)) and edit.seed is None:
        edit = dataclasses.replace(edit, seed=(rng or random).getrandbits(62))
    if module is not None and module.is_stale():
        module.check_fresh()  # raises or recompiles, by the module's choice
    undo = Undo(graph, module, optimizers)
    try:
        applied = edit.apply_graph(graph)
        report = {}
        if module is not None:
            report = edit.apply_module(module, optimizers, applied) or {}
    except BaseException as exc:
        try:
            undo.restore()
        except EditError as broken:
            raise broken from exc
        raise
    if log is not None:
        log.append(edit)
    return EditResult(edit, graph, module, report)
