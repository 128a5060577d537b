"""Undo a failed edit, at every level: the graph, the module and the optimizers come back
exactly as they were.

:func:`supernet.edits.apply_edit` takes an :class:`Undo` before an edit and restores it
when the edit raises, whichever step failed (the graph side, the module's synchronization,
the optimizers, or the relaxation's resync).

It saves references, not copies of tensors. Edits and synchronizations never write into an
existing tensor (weights, architecture logits, optimizer state, graph masks and unit ids):
they build new ones and swap them in. So putting back every object's attributes (and the
contents of the dicts, lists and sets they hold) restores the module bitwise; torch's
version counters check that no existing tensor was written, and :meth:`Undo.restore` fails
loudly if one was.
"""

from __future__ import annotations

import gc
import itertools

from supernet.errors import EditError
from supernet.optim import save_state

__all__ = ["Undo"]

_CONTAINERS = (dict, list, set)


class Undo:
    """What an edit may change in ``graph`` (and its cell templates), ``module`` and
    ``optimizers``, to put back with :meth:`restore`.

    Examples:
        >>> from supernet.units import mlp
        >>> from supernet.units.surgery import add_units
        >>> g = mlp([3, 4, 2]); version = g.version; undo = Undo(g)
        >>> _ = add_units(g, "h1", 2)
        >>> undo.restore(); len(g.node("h1")["units"]), g.version == version
        (4, True)
    """

    def __init__(self, graph, module=None, optimizers=()):
        self.graphs = [(g, g.snapshot()) for g in _graphs(graph)]
        self.objects, self.held, self.empty, self.tensors = [], [], [], []
        if module is not None:
            collecting = gc.isenabled()  # thousands of small copies: no collection meanwhile
            gc.disable()
            try:
                self._save_modules(module)
            finally:
                if collecting:
                    gc.enable()
        self.optimizers = save_state(optimizers)
        self.tensors += [(t, t._version) for t in self.optimizers.tensors()]

    def _save_modules(self, module) -> None:
        for m in module.modules():
            attrs = m.__dict__.copy()
            self.objects.append((m, attrs))
            for v in attrs.values():
                if isinstance(v, _CONTAINERS):
                    if v:
                        self.held.append((v, _contents(v)))
                    else:
                        self.empty.append(v)
            for t in itertools.chain(m._parameters.values(), m._buffers.values()):
                if t is not None:
                    self.tensors.append((t, t._version))

    def restore(self) -> None:
        """Put everything back; raises :class:`EditError` if a tensor was written in place
        (the failing edit broke the rule above, and that tensor cannot be restored)."""
        for g, saved in self.graphs:
            g.restore(saved)
        for obj, attrs in self.objects:
            obj.__dict__.clear()
            obj.__dict__.update(attrs)
        for container, contents in self.held:
            _refill(container, contents)
        for container in self.empty:
            container.clear()
        self.optimizers.restore()
        written = [tuple(t.shape) for t, v in self.tensors if t._version != v]
        if written:
            raise EditError(
                f"the failed edit wrote into {len(written)} existing tensor(s) in place (shapes "
                f"{written[:4]}), so they cannot be put back; edits must build new tensors. "
                "Recompile the module and rebuild the optimizers from a checkpoint"
            )


def _graphs(graph) -> list:
    """``graph`` and its cell templates, recursively, each once."""
    out, todo, seen = [], [graph], set()
    while todo:
        g = todo.pop()
        if id(g) in seen:
            continue
        seen.add(id(g))
        out.append(g)
        todo.extend(g.cells.values())
    return out


def _contents(container):
    """A plain copy of a dict's, list's or set's contents (fast, whatever its subclass)."""
    if isinstance(container, dict):
        return dict(container)
    return list(container) if isinstance(container, list) else set(container)


def _refill(container, contents) -> None:
    if isinstance(container, dict):
        container.clear()
        container.update(contents)
    elif isinstance(container, list):
        container[:] = contents
    else:
        container.clear()
        container.update(contents)
