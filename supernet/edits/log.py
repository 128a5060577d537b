"""The edit log: every edit applied, in order, saved to JSON and replayed exactly."""

from __future__ import annotations

import json
import random

from supernet.edits.base import Edit, apply_edit, edit_from_dict
from supernet.errors import EditError, SerializationError, SupernetError
from supernet.io import atomic_write, read_json

__all__ = ["EditLog"]


class EditLog:
    """An ordered list of edit records.

    Replaying a log on the graph (and module) it started from reproduces the same graph and
    bitwise the same weights: every random initialization is seeded by its record.
    """

    def __init__(self, edits: list[Edit] | None = None):
        self.edits: list[Edit] = list(edits or [])

    def append(self, edit: Edit) -> None:
        self.edits.append(edit)

    def __len__(self) -> int:
        return len(self.edits)

    def __iter__(self):
        return iter(self.edits)

    def __getitem__(self, i):
        return self.edits[i]

    def counts(self) -> dict[str, int]:
        """Number of edits per neural operator."""
        out: dict[str, int] = {}
        for e in self.edits:
            out[e.operator] = out.get(e.operator, 0) + 1
        return out

    def to_list(self) -> list[dict]:
        return [e.to_dict() for e in self.edits]

    def save(self, path: str) -> None:
        atomic_write(path, json.dumps({"edits": self.to_list()}, indent=1).encode())

    @classmethod
    def load(cls, path: str) -> "EditLog":
        """Read a log written by :meth:`save`; every record is checked (see
        :func:`~supernet.edits.base.edit_from_dict`), and a failure names the file and the
        record."""
        data = read_json(path, "edit log")
        if not isinstance(data, dict) or not isinstance(data.get("edits"), list):
            raise SerializationError(f"{path}: not an edit log (no 'edits' list)")
        return cls([edit_from_dict(d, f"{path}: edits[{i}]")
                    for i, d in enumerate(data["edits"])])

    def replay(self, graph, module=None, optimizers=()):
        """Apply every edit to ``graph`` (and ``module``) in order; returns the graph.

        An edit that cannot be applied raises an :class:`EditError` naming its position in
        the log; the edits before it stay applied.
        """
        rng = random.Random(0)  # every record carries its seed: unused, as in Editor
        for i, e in enumerate(self.edits):
            try:
                apply_edit(graph, e, module, optimizers, None, rng)
            except SupernetError as exc:
                raise EditError(f"edit log: edits[{i}] ({e.kind}) cannot be replayed: "
                                f"{exc}") from exc
        return graph

    def __repr__(self) -> str:
        return f"EditLog({len(self.edits)} edits, {self.counts()})"
