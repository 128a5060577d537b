"""P-DARTS search-space regularization: dropout after every skip-connect candidate.

P-DARTS (Chen et al., ICCV 2019, Sec. 3.3) observes that a deeper super-network is drawn to
parameter-free skip-connects, and "inserts operation-level Dropout after each skip-connect
operation" during the search, with a rate that decays over each stage. The reference
implementation wraps the identity candidates (stride-1 skip-connects; the strided one is a
factorized reduce and is left alone) in ``nn.Dropout(p)`` in training mode.

:class:`SkipDropout` does the same as a relaxation wrapper: its decisions run the base
relaxation's mixture with the output of each identity ``skip_connect`` candidate passed
through element-wise dropout, in training mode only. The ops, the graph and the
parameters are untouched; setting :attr:`SkipDropout.p` changes the rate.

Examples:
    >>> import torch
    >>> from supernet import Graph, compile
    >>> g = Graph("layer"); g.add_input("x", channels=2); g.add_node("h", channels=2)
    >>> g.add_edge("x", "h", ["skip_connect", "none"]); g.set_outputs(["h"])
    >>> net = compile(g)
    >>> with torch.no_grad(): _ = net.arch["x->h"].zero_()  # weights 0.5, 0.5
    >>> net.relaxation = SkipDropout(p=0.5); net.relaxation.attach(net)
    >>> y = net.train()(torch.ones(1000, 2))
    >>> sorted(set(torch.round(y.flatten() * 1000).tolist()))  # 0.5 * x / (1 - p), or 0
    [0.0, 1000.0]
    >>> bool((net.eval()(torch.ones(3, 2)) == 0.5).all())  # no dropout in eval mode
    True
"""

from __future__ import annotations

import weakref

import torch.nn as nn
import torch.nn.functional as F

from supernet.compiler.module import module_key
from supernet.errors import SupernetError
from supernet.gates import Decision, Relaxation
from supernet.search.progressive.masking import RelaxationWrapper

__all__ = ["SkipDropout", "DropoutDecision"]


class DropoutDecision(Decision):
    """A base decision whose candidates ``drop`` have their outputs dropped out."""

    __slots__ = ("base", "drop", "p")

    def __init__(self, base: Decision, drop: list[int], p: float):
        super().__init__(base.weights, base.active)
        self.base, self.drop, self.p = base, drop, p

    def mix(self, i, ops, zero, x):
        ops = list(ops)
        for k in self.drop:
            if isinstance(ops[k], nn.Identity):  # only the parameter-free skip
                ops[k] = _dropped(ops[k], self.p)
        return self.base.mix(i, ops, zero, x)


def _dropped(op, p):
    return lambda x: F.dropout(op(x), p, True)


class SkipDropout(RelaxationWrapper):
    """Dropout on the output of skip-connect candidates (P-DARTS).

    Args:
        base: the relaxation whose decisions are regularized (softmax by default).
        p: the dropout rate (changed by the search schedule).
        ops: candidate names to regularize.

    Attributes:
        schedule: optional ``schedule(epoch) -> p``; the loop's ``on_epoch_start(epoch,
            epochs)`` hook then sets :attr:`p` (P-DARTS sets it to its stage schedule).

    Call :meth:`attach` with the module (the search loop does) so that it knows the
    candidates of each gate.
    """

    def __init__(self, base: Relaxation | None = None, p: float = 0.0,
                 ops: tuple[str, ...] = ("skip_connect",)):
        super().__init__(base)
        self.p = float(p)
        self.ops = tuple(ops)
        self._module = None
        self._names: dict[str, list[int]] = {}
        self._version = None
        self.schedule = None

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        if self.schedule is not None:
            self.p = float(self.schedule(epoch))
        fn = getattr(self.base, "on_epoch_start", None)
        if fn is not None:
            fn(epoch, epochs)

    def attach(self, module) -> None:
        self._module = weakref.ref(module)
        self._version = None
        super().attach(module)

    def _indices(self, key: str) -> list[int]:
        module = self._module() if self._module is not None else None
        if module is None:
            raise SupernetError(
                "SkipDropout does not know the module it regularizes; call "
                "relaxation.attach(module) after setting it on the module"
            )
        if self._version != module.graph_version:
            self._names = {module_key(k): [i for i, n in enumerate(ops) if n in self.ops]
                           for k, ops in module.gates().items()}
            self._version = module.graph_version
        return self._names.get(module_key(key), [])

    def adjust(self, key, decision):
        if not self.training or self.p <= 0.0:
            return decision
        drop = self._indices(key)
        if not drop:
            return decision
        return DropoutDecision(decision, drop, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p:g}, ops={list(self.ops)}"
