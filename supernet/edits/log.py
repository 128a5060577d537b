"""The edit log: every edit applied, in order, saved to JSON and replayed exactly."""

from __future__ import annotations

import json
import random

from supernet.edits.base import Edit, apply_edit, edit_from_dict
from supernet.errors import SerializationError
from supernet.io import atomic_write

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
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise SerializationError(f"cannot read edit log {path!r}: {exc}") from exc
        if not isinstance(data, dict) or "edits" not in data:
            raise SerializationError(f"{path}: not an edit log (no 'edits' list)")
        return cls([edit_from_dict(d) for d in data["edits"]])

    def replay(self, graph, module=None, optimizers=()):
        """Apply every edit to ``graph`` (and ``module``) in order; returns the graph."""
        rng = random.Random(0)  # every record carries its seed: unused, as in Editor
        for e in self.edits:
            apply_edit(graph, e, module, optimizers, None, rng)
        return graph

    def __repr__(self) -> str:
        return f"EditLog({len(self.edits)} edits, {self.counts()})"
