"""Exceptions raised by supernet.

Every user-facing failure is one of these classes. Messages say what happened, where
(which node, edge, key or shape) and how to fix it, so that a user never has to read a
traceback from inside torch or networkx to understand a mistake.
"""

from __future__ import annotations

__all__ = [
    "SupernetError",
    "GraphError",
    "CycleError",
    "NodeNotFound",
    "EdgeNotFound",
    "DuplicateNameError",
    "ShapeError",
    "UnknownNameError",
    "EditError",
    "StaleModuleError",
    "SerializationError",
    "ConfigError",
    "SearchError",
    "GenotypeError",
    "LintError",
    "BenchmarkError",
]


class SupernetError(Exception):
    """Base class of every exception raised by supernet."""


class GraphError(SupernetError):
    """A graph is malformed: structure or attributes do not follow the schema."""


class CycleError(GraphError):
    """A graph that must be acyclic has a cycle."""


class NodeNotFound(GraphError, KeyError):
    """A node named by the user does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class EdgeNotFound(GraphError, KeyError):
    """An edge named by the user does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(GraphError):
    """A name (node, input, output, op) is used twice."""


class ShapeError(GraphError):
    """Channel counts, feature sizes or spatial strides do not agree."""


class UnknownNameError(SupernetError, KeyError):
    """A name could not be resolved among the registered choices."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class EditError(SupernetError):
    """An edit cannot be applied to the graph (or to its compiled module)."""


class StaleModuleError(SupernetError):
    """A compiled module is older than the graph it was compiled from."""


class SerializationError(SupernetError):
    """A file cannot be written or read back."""


class ConfigError(SupernetError):
    """A configuration key or value is invalid."""


class SearchError(SupernetError):
    """A search cannot start or cannot continue (bad data, NaN losses, ...)."""


class GenotypeError(SupernetError, ValueError):
    """A genotype or architecture string is malformed."""


class BenchmarkError(SupernetError):
    """A tabular benchmark cannot answer: an architecture outside its table, a data set or
    metric it does not have, a graph of another space (:mod:`supernet.tabular`)."""


class LintError(GraphError):
    """Raised by :func:`supernet.lint` with every problem it found.

    Attributes:
        problems: one message per problem, each naming the node or edge at fault.
    """

    def __init__(self, problems: list[str], graph_name: str = "graph"):
        self.problems = list(problems)
        head = f"{graph_name}: {len(self.problems)} problem(s) found"
        super().__init__(head + "\n  - " + "\n  - ".join(self.problems))


def did_you_mean(name: str, choices) -> str:
    """Return a short hint naming the closest choice, or an empty string."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
