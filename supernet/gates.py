"""Gates: the structural decisions a search makes, and how a forward pass uses them.

A *gate group* is an ``(n, K)`` table of architecture parameters: ``n`` gates, each
choosing among ``K`` candidates. At layer level every edge with more than one candidate op
is a group with ``n = 1`` (its candidates are the ops); at channel and neuron level a group
holds one gate per unit or connection with ``K = 2`` (keep, drop).

A :class:`Relaxation` turns the architecture parameters of a group into a :class:`Decision`
once per forward pass: weights for every candidate (softmax, sigmoid, Gumbel) and optionally
the candidates to execute (sampling). A :class:`Decision` knows how to mix the candidates of
one gate, so sampling relaxations run only the sampled ops.

Examples:
    >>> import torch
    >>> from supernet.gates import Softmax
    >>> d = Softmax().decide("e", torch.zeros(1, 4))
    >>> d.weights
    tensor([[0.2500, 0.2500, 0.2500, 0.2500]])
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

__all__ = ["Decision", "PathDecision", "Relaxation", "Softmax", "mix_candidates",
           "gate_probabilities"]


def mix_candidates(
    ops: Sequence[Callable],
    zero: Sequence[bool],
    x: torch.Tensor,
    weights: torch.Tensor,
    indices: Sequence[int],
) -> torch.Tensor:
    """``sum_k weights[k] * ops[k](x)`` over ``indices``, skipping zero ops.

    A zero op contributes nothing to the value nor to any gradient (``d/dw_k (w_k * 0) = 0``),
    so it is not computed unless every selected candidate is zero. A candidate with a
    ``mix_weighted(x, w)`` method computes ``op(x) * w`` itself (the compiled plan gives one
    to candidates that end in a batch norm: :mod:`supernet.ops.weighted_norm`).
    """
    out = None
    for k in indices:
        if zero[k]:
            continue
        op = ops[k]
        weighted = getattr(op, "mix_weighted", None)
        y = op(x) * weights[k] if weighted is None else weighted(x, weights[k])
        out = y if out is None else out + y
    if out is None:  # only zero ops selected: keep the output's shape and a graph edge
        k = indices[0]
        out = ops[k](x) * weights[k]
    return out


class Decision:
    """A relaxation's decision for one gate group in one forward pass.

    Attributes:
        weights: ``(n, K)`` tensor of mixing weights (differentiable w.r.t. the group's
            architecture parameters), or ``None``.
        active: per gate, the candidate indices to execute; ``None`` runs all of them.
    """

    __slots__ = ("weights", "active")

    def __init__(self, weights: torch.Tensor | None, active: list[list[int]] | None = None):
        self.weights = weights
        self.active = active

    def mix(self, i: int, ops: Sequence[Callable], zero: Sequence[bool], x: torch.Tensor):
        """Output of gate ``i`` whose candidates are ``ops`` (callables of ``x``)."""
        idx = range(len(ops)) if self.active is None else self.active[i]
        return mix_candidates(ops, zero, x, self.weights[i], idx)

    def calls_on_input(self) -> bool:
        """Whether :meth:`mix` calls the candidates on the edge's input itself (or, for a
        partial-channel gate of ``K``, on its first ``C/K`` channels): the compiled plan
        then hands them the parameter-free prefixes it computes once per node
        (:mod:`supernet.ops.prefix`). A subclass that overrides ``mix`` says so here."""
        return type(self).mix is Decision.mix

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weights={self.weights}, active={self.active})"


class Relaxation(nn.Module):
    """Base class: turns architecture parameters into decisions.

    Override :meth:`decide`. A relaxation holds no architecture parameters (they live in
    the compiled module, ``module.arch``); it may hold state such as a temperature as
    buffers, so that it is checkpointed with the module.
    """

    def decide(self, key: str, alpha: torch.Tensor) -> Decision:
        """The decision for gate group ``key`` with parameters ``alpha`` of shape ``(n, K)``."""
        raise NotImplementedError

    def forward(self, arch: dict[str, torch.Tensor]) -> dict[str, Decision]:
        return {k: self.decide(k, a) for k, a in arch.items()}

    def attach(self, module) -> None:
        """Called when the relaxation is set on ``module``; may add architecture
        parameters of its own to ``module.arch`` (e.g. edge-normalization weights)."""

    def resync(self, module) -> None:
        """Called after every structural change of ``module`` (its gates were resized): a
        relaxation that attached parameters resizes or drops them here. Entries of
        ``module.arch`` that are no gate are kept across edits for it."""

    def loss(self, module) -> torch.Tensor | float:
        """A regularization term on the architecture parameters (0 by default)."""
        return 0.0

    def discrete(self, alpha: torch.Tensor) -> torch.Tensor:
        """Index of the chosen candidate per gate (argmax by default)."""
        return alpha.argmax(-1)

    def grow(self, alpha: torch.Tensor, policy: str, source: int | None,
             share: float = 0.5) -> torch.Tensor:
        """Logits with one candidate appended, keeping the mixture's output unchanged.

        For competitive (softmax-like) relaxations, a new candidate must take its
        probability from an existing one: ``"zero"`` takes the fraction ``share`` of the
        mass of the zero candidate ``source`` (the new op starts at zero output), ``"split"``
        halves the mass of ``source`` between it and its copy. ``"random"`` appends the
        row's mean (the output changes).

        Args:
            alpha: ``(n, K)`` logits, or ``None`` for an edge that has one candidate and no
                gate yet (its op has weight one): the result is its ``(1, 2)`` gate.
            source: index of the candidate whose mass is taken.
        """
        # a single softmax candidate has probability one whatever its logit
        alpha = torch.zeros(1, 1) if alpha is None else alpha.detach()
        if policy == "random" or source is None:
            return torch.cat([alpha, alpha.mean(-1, keepdim=True)], dim=-1)
        frac = 0.5 if policy == "split" else share
        if not 0.0 < frac < 1.0:
            raise ValueError(f"share must be in (0, 1), got {frac}")
        out = alpha.clone()
        out[:, source] = alpha[:, source] + torch.log1p(torch.tensor(-frac))
        new = alpha[:, source : source + 1] + torch.log(torch.tensor(frac))
        return torch.cat([out, new], dim=-1)


class Softmax(Relaxation):
    """DARTS: a softmax over each gate's candidates; every candidate runs."""

    def decide(self, key: str, alpha: torch.Tensor) -> Decision:
        return Decision(torch.softmax(alpha, dim=-1))


def _gate_items(module):
    """``(key, logits)`` of every gate; modules without ``gates()`` (other levels) expose
    theirs as the entries of ``module.arch``."""
    arch = getattr(module, "arch", None)
    if arch is None:
        return []
    gates = module.gates() if hasattr(module, "gates") else list(arch.keys())
    return [(k, arch[k]) for k in gates if k in arch]


def gate_probabilities(module) -> dict[str, torch.Tensor]:
    """The candidate weights of every gate of ``module`` under its relaxation.

    Uses the relaxation's ``probabilities`` hook, or a softmax when it has none.

    Examples:
        >>> from supernet import Graph, compile
        >>> g = Graph("layer"); g.add_input("x", channels=2); g.add_node("h", channels=2)
        >>> g.add_edge("x", "h", ["identity", "none"]); g.set_outputs(["h"])
        >>> p = gate_probabilities(compile(g))["x->h"]
        >>> round(float(p.sum()), 5)
        1.0
    """
    relax = getattr(module, "relaxation", None)
    fn = getattr(relax, "probabilities", None)
    if fn is not None:
        return {k: v.detach() for k, v in fn(module).items()}
    return {k: torch.softmax(a.detach(), -1) for k, a in _gate_items(module)}


class PathDecision(Decision):
    """A sampled path: each gate runs one candidate (``active``), whose weight is one.

    When no gradient of the weights is wanted (they do not require one), a gate outputs its
    op's output itself, as the standalone network of the path does, instead of the product
    with a weight of one: the product is an extra pass over every edge's output in time,
    and, when the weight requires a gradient, an extra tensor saved for backward.

    Examples:
        >>> import torch, torch.nn as nn
        >>> d = PathDecision(torch.tensor([[0.0, 1.0]]), [[1]])
        >>> x = torch.randn(2, 3)
        >>> d.mix(0, [nn.Identity(), nn.Identity()], [False, False], x) is x
        True
    """

    __slots__ = ()

    def mix(self, i, ops, zero, x):
        idx = self.active[i]
        if len(idx) == 1 and not self.weights.requires_grad:
            return ops[idx[0]](x)
        return super().mix(i, ops, zero, x)
