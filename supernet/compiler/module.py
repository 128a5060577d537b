"""The executable side of the IR: a module compiled from a graph knows which graph version
it was made from, and refuses to run stale (or recompiles, by the user's choice).
"""

from __future__ import annotations

import torch.nn as nn

from supernet.errors import StaleModuleError

__all__ = ["GraphModule", "full_version", "module_key"]


def full_version(graph) -> int:
    """A number that grows with every change to ``graph`` or to any of its cell templates."""
    return graph.version + sum(full_version(c) for c in graph.cells.values())


def module_key(name: str) -> str:
    """A submodule or parameter name for a graph name (``.`` is reserved by torch)."""
    return str(name).replace(".", "_") or "_"


class GraphModule(nn.Module):
    """Base class of compiled graphs (as ``torch.fx.GraphModule``).

    Attributes:
        graph: the graph this module was compiled from (not copied).
        graph_version: ``full_version(graph)`` when the module was last synchronized.
        on_stale: ``"raise"`` (default) or ``"recompile"``: what a forward pass does when
            the graph changed without this module being passed to the edit.
    """

    def __init__(self, graph):
        super().__init__()
        self.graph = graph
        self.graph_version = full_version(graph)
        self.on_stale = "raise"

    def is_stale(self) -> bool:
        return full_version(self.graph) != self.graph_version

    def mark_synced(self) -> None:
        """Record that the module matches the graph again (called by edits)."""
        self.graph_version = full_version(self.graph)

    def check_fresh(self) -> None:
        if not self.is_stale():
            return
        if self.on_stale == "recompile":
            self.recompile()
            return
        raise StaleModuleError(
            f"module compiled from graph {self.graph.name!r} at version {self.graph_version}, "
            f"but the graph is now at version {full_version(self.graph)}: it was edited without "
            "passing this module. Call module.recompile() (keeps the weights of what survived), "
            "or set module.on_stale = 'recompile'."
        )

    def recompile(self) -> None:
        """Rebuild from the graph, keeping the weights of every surviving entity."""
        raise NotImplementedError

    def weights(self):
        """Parameters trained on the training split (everything but architecture parameters)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def arch_parameters(self):
        """Architecture parameters (gate logits), trained on the validation split."""
        arch = getattr(self, "arch", None)
        return list(arch.parameters()) if arch is not None else []

    def extra_repr(self) -> str:
        return f"graph={self.graph.name!r}, level={self.graph.level!r}, version={self.graph_version}"
