"""Evaluate a super-network with candidates or edges switched off, without editing it.

Perturbation-based selection (DARTS-PT) measures how much the validation accuracy drops
when one candidate op, or one whole edge, is taken away. Taking an op away is a decision
that gives it weight zero (:class:`MaskOps`, a relaxation wrapper set on the module for the
duration of a measurement); taking an edge away zeroes its output (:func:`zeroed_edges`,
forward hooks removed afterwards). Neither changes the graph, the module's parameters or
the edit log.

Examples:
    >>> import torch
    >>> from supernet import Graph, compile
    >>> from supernet.gates import Softmax
    >>> g = Graph("layer"); g.add_input("x", channels=2); g.add_node("h", channels=2)
    >>> g.add_edge("x", "h", ["identity", "none"]); g.set_outputs(["h"])
    >>> net = compile(g).eval(); x = torch.ones(1, 2)
    >>> with torch.no_grad(): _ = net.arch["x->h"].zero_()
    >>> net(x)
    tensor([[0.5000, 0.5000]], grad_fn=<MulBackward0>)
    >>> with using_relaxation(net, MaskOps(net.relaxation, {"x->h": [0]})):
    ...     net(x)
    tensor([[0., 0.]], grad_fn=<MulBackward0>)
    >>> with zeroed_edges(net, [(None, "x", "h")]):
    ...     net(x)
    tensor([[0., 0.]], grad_fn=<MulBackward0>)
    >>> type(net.relaxation).__name__
    'Softmax'
"""

from __future__ import annotations

import contextlib

import torch

from supernet.compiler.module import module_key
from supernet.gates import Decision, Relaxation, Softmax

__all__ = ["RelaxationWrapper", "MaskOps", "using_relaxation", "zeroed_edges", "batch_statistics"]

_HOOKS = ("set_phase", "on_epoch_start", "after_arch_step", "probabilities", "resync",
          "resized_index")


class RelaxationWrapper(Relaxation):
    """A relaxation that changes the decisions of another one (``base``) and forwards
    every other hook to it (``attach``, ``loss``, ``discrete``, ``grow``, and the search
    loop's optional ``set_phase``, ``on_epoch_start``, ``after_arch_step``,
    ``probabilities``, ``resync``, ``resized_index``)."""

    def __init__(self, base: Relaxation | None = None):
        super().__init__()
        self.base = base if base is not None else Softmax()

    def decide(self, key: str, alpha: torch.Tensor) -> Decision:
        return self.adjust(key, self.base.decide(key, alpha))

    def forward(self, arch):
        # The base may decide all groups at once (e.g. a shared sample): ask it, then adjust.
        return {k: self.adjust(k, d) for k, d in self.base(arch).items()}

    def adjust(self, key: str, decision: Decision) -> Decision:
        """Change the base's decision of gate ``key`` (identity by default)."""
        return decision

    def attach(self, module) -> None:
        self.base.attach(module)

    def loss(self, module):
        return self.base.loss(module)

    def discrete(self, alpha):
        return self.base.discrete(alpha)

    def grow(self, alpha, policy, source, share=0.5):
        return self.base.grow(alpha, policy, source, share)

    def __getattr__(self, name):
        if name in _HOOKS:
            base = self._modules.get("base")
            fn = getattr(base, name, None)
            if fn is not None:
                return fn
        return super().__getattr__(name)


class MaskOps(RelaxationWrapper):
    """The decisions of ``base`` with some candidates given weight zero.

    The other candidates keep their weights (they are not renormalized), as DARTS-PT
    masks an op. A sampling decision drops the masked candidates from the ops it runs.

    Args:
        masks: gate key -> indices of the candidates to switch off.
    """

    def __init__(self, base: Relaxation | None, masks: dict[str, list[int]]):
        super().__init__(base)
        self.masks = {module_key(k): sorted(set(v)) for k, v in masks.items()}

    def adjust(self, key, decision):
        idx = self.masks.get(module_key(key))
        if not idx or decision.weights is None:
            return decision
        w = decision.weights.clone()
        w[:, idx] = 0.0
        active = decision.active
        if active is not None:
            # an empty selection runs one masked candidate at weight zero: same shape, no value
            active = [[k for k in a if k not in idx] or [idx[0]] for a in active]
        return Decision(w, active)


@contextlib.contextmanager
def using_relaxation(module, relaxation):
    """Run ``module`` with ``relaxation`` inside the block, then restore its own."""
    saved = module.relaxation
    module.relaxation = relaxation
    try:
        yield module
    finally:
        module.relaxation = saved


def _zero(_module, _inputs, output):
    return output * 0.0


@contextlib.contextmanager
def zeroed_edges(module, edges):
    """Inside the block, edges ``(cell, u, v)`` (``cell`` ``None`` or ``""`` for the top
    graph) output zeros, in every compiled instance of their cell template."""
    handles = []
    try:
        for cell, u, v in edges:
            owners = module.cell_modules(cell) if cell else [module]
            for m in owners:
                for op in m.edge_module(u, v).values():
                    handles.append(op.register_forward_hook(_zero))
        yield module
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def batch_statistics(module):
    """Inside the block, batch normalization layers normalize by the statistics of each
    batch, in eval mode too, and leave their running statistics untouched (DARTS-PT
    measures the super-network so: its running statistics lag behind the weights)."""
    saved = []
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            saved.append((m, m.running_mean, m.running_var))
            m.running_mean = None
            m.running_var = None
    try:
        yield module
    finally:
        for m, mean, var in saved:
            m.running_mean, m.running_var = mean, var
