"""ProxylessNAS: binary gates, two-path sampling and a cost-aware loss.

Cai et al., "ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware"
(ICLR 2019). The architecture parameters ``α`` of a gate define ``p = softmax(α)``.

* Weight steps (phase ``"weights"``): one path ``k ~ p`` per gate; only that op runs.
* Architecture steps (phase ``"arch"``): two candidates ``{i, j}`` are drawn from ``p``
  without replacement, one of them is made active with the probabilities
  ``softmax(α_i, α_j)``, and binary gates ``g`` (1 on the active one) multiply the outputs.
  Only the active op runs forward; a custom autograd function keeps only the sampled paths
  in memory, passes the gradient on to the input (the weights are trained in weight steps)
  and gives ``∂L/∂g_m = ⟨∂L/∂out, o_m(x)⟩`` for the two sampled candidates (the
  inactive one is recomputed without a graph in the backward pass), then
  ``∂L/∂α_a = Σ_m ∂L/∂g_m · p̂_m (δ_am - p̂_a)`` with ``p̂`` the softmax of the two logits.
  After the optimizer step the two updated logits are shifted by one offset so that the
  total probability of the unsampled candidates is unchanged.
* Cost loss: ``cost_weight · Σ_gates Σ_k p_k cost_k`` (expected FLOPs or latency, added to
  the loss), where ``cost`` maps op names (or gate keys) to per-op costs, or is a callable
  computing them. In an architecture step the expectation is over the two sampled
  candidates, ``Σ_m p̂_m cost_m``, as the reference computes it (its
  ``current_prob_over_ops``): like the binary-gate gradient it moves only the two sampled
  logits, so the rescaling after the step leaves the unsampled candidates exactly as they
  were. Elsewhere (:meth:`BinaryGates.expected_cost`) it is over every candidate.

The reference skips the update of a gate whose active candidate is the zero op; here that
gate is updated like any other (the zero op's gate gradient is zero, the other sampled
candidate's is not).

At the channel and neuron levels, :class:`BinaryUnitGates` gives every unit and connection
of a gate group the two paths keep and drop (see its docstring).
"""

from __future__ import annotations

from typing import Callable

import torch

from supernet.compiler.module import module_key
from supernet.cost.layer import METRICS, gate_costs
from supernet.errors import ConfigError
from supernet.gates import Decision
from supernet.search.base import require_layer, require_unit
from supernet.search.budget import METRICS as BUDGET_METRICS
from supernet.search.budget import Budget, budget_of
from supernet.search.relaxations.base import (
    SearchRelaxation,
    _gate_items,
    PathDecision,
    argmax_decision,
)

__all__ = ["BinaryGates", "BinaryUnitGates", "TwoPathDecision", "binary_gate_grad"]


def binary_gate_grad(probs: torch.Tensor, gate_grads: torch.Tensor) -> torch.Tensor:
    """``∂L/∂α`` of the two involved logits from ``∂L/∂g`` (ProxylessNAS, Eq. 4).

    Args:
        probs: softmax of the two involved logits, shape ``(2,)`` or ``(n, 2)`` (one row
            per gate).
        gate_grads: ``∂L/∂g`` of the two binary gates, of the same shape.
    """
    eye = torch.eye(2, dtype=probs.dtype, device=probs.device)
    # entry [..., a, m] = p_m (δ_am - p_a)
    jac = probs.unsqueeze(-2) * (eye - probs.unsqueeze(-1))
    return (jac * gate_grads.unsqueeze(-2)).sum(-1)


class _TwoPath(torch.autograd.Function):
    """Runs the active op; the backward pass also gives the two binary-gate gradients."""

    @staticmethod
    def forward(ctx, x, alpha, decision, ops):
        detached = x.detach().requires_grad_(x.requires_grad)
        with torch.enable_grad():
            out = ops[decision.involved[decision.pick]](detached)
        ctx.save_for_backward(detached, out)
        ctx.decision, ctx.ops, ctx.alpha_shape = decision, ops, alpha.shape
        return out.detach()

    @staticmethod
    def backward(ctx, grad_out):
        detached, out = ctx.saved_tensors
        d = ctx.decision
        grads = []
        with torch.no_grad():
            for m, k in enumerate(d.involved):
                o = out if m == d.pick else ctx.ops[k](detached)
                grads.append((o * grad_out).sum())
        gate_grads = torch.stack(grads).to(d.probs.dtype)
        grad_alpha = torch.zeros(ctx.alpha_shape, dtype=d.probs.dtype, device=grad_out.device)
        grad_alpha[d.row, list(d.involved)] = binary_gate_grad(d.probs, gate_grads)
        grad_x = None
        if detached.requires_grad:  # upstream gates need it; the op's weights do not
            (grad_x,) = torch.autograd.grad(out, detached, grad_out)
        return grad_x, grad_alpha, None, None


class TwoPathDecision(Decision):
    """Two sampled candidates of one gate, one of them active (architecture steps)."""

    __slots__ = ("alpha", "involved", "pick", "probs", "row", "old", "key")

    def __init__(self, alpha, involved, pick, row=0, key=None):
        super().__init__(None, [[involved[pick]]])
        self.alpha, self.involved, self.pick, self.row = alpha, list(involved), pick, row
        self.key = key
        self.old = alpha.detach()[row, self.involved].clone()
        self.probs = torch.softmax(self.old, -1)

    def mix(self, i, ops, zero, x):
        return _TwoPath.apply(x, self.alpha, self, tuple(ops))


class BinaryGates(SearchRelaxation):
    """ProxylessNAS binary gates.

    Args:
        cost: per-op costs: ``{op name: cost}``, ``{gate key: [cost per candidate]}``, or a
            callable ``cost(module) -> {gate key: [cost per candidate]}``. ``None`` with
            ``cost_weight > 0`` takes :func:`supernet.cost.layer.gate_costs` of ``metric``.
        cost_weight: weight ``λ`` of the expected cost in the architecture loss.
        metric: ``"flops"`` (counted multiply-accumulates), ``"params"`` or ``"latency"``
            (milliseconds per candidate, measured on the module's device, as ProxylessNAS
            profiles its latency table).
    """

    def __init__(self, cost: dict | Callable | None = None, cost_weight: float = 0.0,
                 metric: str = "flops"):
        super().__init__()

        if metric not in METRICS:
            raise ConfigError(f"BinaryGates: metric {metric!r} is unknown; use one of "
                              f"{list(METRICS)}")
        self.cost = cost
        self.cost_weight = float(cost_weight)
        self.metric = metric
        self._pending: list[TwoPathDecision] = []
        self._costs: dict[str, torch.Tensor] | None = None

    def decide(self, key, alpha):
        if self.phase == "eval":
            return argmax_decision(alpha)
        probs = torch.softmax(alpha.detach(), -1)
        if self.phase == "weights":
            idx = torch.multinomial(probs, 1)[:, 0]
            return PathDecision(torch.ones_like(probs), [[int(i)] for i in idx])
        if alpha.shape[0] != 1:
            raise ConfigError("BinaryGates: gates of several rows are not supported (use layer gates)")
        involved = torch.multinomial(probs[0], 2, replacement=False).tolist()
        pick = int(torch.multinomial(torch.softmax(alpha.detach()[0, involved], -1), 1))
        d = TwoPathDecision(alpha, involved, pick, key=key)
        self._pending.append(d)
        return d

    def forward(self, arch):
        if self.phase == "arch":
            self._pending = []
        return super().forward(arch)

    def after_arch_step(self, module):
        """Shift the two updated logits so the unsampled candidates keep their mass."""
        with torch.no_grad():
            for d in self._pending:
                new = d.alpha[d.row, d.involved]
                offset = torch.logsumexp(new, 0) - torch.logsumexp(d.old.to(new), 0)
                d.alpha[d.row, d.involved] = new - offset
        self._pending = []

    # ---------------------------------------------------------------- cost
    def gate_costs(self, module) -> dict[str, torch.Tensor]:
        """Per gate key, the cost of each candidate."""
        cost = self.cost
        if cost is None:
            cost = _cost_model(self.metric)
        table = cost(module) if callable(cost) else cost
        out = {}
        for key, names in module.gates().items():
            if key in table:
                values = list(table[key])
                if len(values) != len(names):
                    raise ConfigError(
                        f"cost[{key!r}] has {len(values)} values for {len(names)} candidates {names}"
                    )
            else:
                missing = [n for n in names if n not in table]
                if missing:
                    raise ConfigError(
                        f"cost: no cost for op(s) {missing} of gate {key!r}; give cost[op] for "
                        f"every candidate, or cost[{key!r}] = [one per candidate]"
                    )
                values = [table[n] for n in names]
            out[key] = torch.tensor(values, dtype=torch.float32).view(1, -1)
        return out

    def _cost_table(self, module) -> dict[str, torch.Tensor]:
        if self._costs is None or set(self._costs) != set(module.gates()):
            self._costs = self.gate_costs(module)
        return self._costs

    def expected_cost(self, module) -> torch.Tensor:
        """``Σ_gates Σ_k p_k cost_k`` (differentiable in ``α``)."""
        costs = self._cost_table(module)
        total = 0.0
        for key, alpha in _gate_items(module):
            c = costs[key].to(alpha)
            total = total + (torch.softmax(alpha, -1) * c).sum()
        return torch.as_tensor(total)

    def sampled_cost(self, module) -> torch.Tensor:
        """``Σ_gates Σ_m p̂_m cost_m`` over the two candidates sampled in the current
        architecture step, ``p̂`` the softmax of their two logits (differentiable in those
        logits only)."""
        costs = {module_key(k): v for k, v in self._cost_table(module).items()}
        total = 0.0
        for d in self._pending:
            c = costs[module_key(d.key)].to(d.alpha)[0, d.involved]
            total = total + (torch.softmax(d.alpha[d.row, d.involved], -1) * c).sum()
        return torch.as_tensor(total)

    def loss(self, module):
        if not self.cost_weight:
            return 0.0
        if self.phase == "arch" and self._pending:
            return self.cost_weight * self.sampled_cost(module)
        return self.cost_weight * self.expected_cost(module)

    def attach(self, module):
        require_layer(module.graph, "ProxylessNAS binary gates sample two candidate ops of a "
                      "layer-level edge", "use BinaryUnitGates (strategy 'unit_proxyless') there")

    def resync(self, module):
        self._costs = None

    def extra_repr(self) -> str:
        return f"cost_weight={self.cost_weight}, metric={self.metric!r}"


def _cost_model(metric):
    def fn(module):
        return gate_costs(module, metric)

    return fn


class _BinaryKeep(torch.autograd.Function):
    """Binary keep/drop gates of sampled rows; the backward pass gives ``∂L/∂α`` of
    ProxylessNAS (Eq. 4) from ``∂L/∂g``."""

    @staticmethod
    def forward(ctx, alpha, pick):
        probs = torch.softmax(alpha.detach(), -1)
        ctx.save_for_backward(probs)
        return torch.nn.functional.one_hot(pick, 2).to(alpha.dtype)

    @staticmethod
    def backward(ctx, grad_g):
        (probs,) = ctx.saved_tensors
        return binary_gate_grad(probs, grad_g.to(probs.dtype)).to(grad_g.dtype), None


class BinaryUnitGates(SearchRelaxation):
    """ProxylessNAS binary gates for the keep/drop gates of units and connections.

    Every row of a gate group (a unit, a tied group of units, or a connection) has two
    paths, keep (the unit's output or the connection's weight) and drop (zero), with
    ``p = softmax(α)`` over them. Transposed from ProxylessNAS (Cai et al., ICLR 2019):

    * weight steps: one path per row is sampled from ``p``; the binary gate ``g`` (one-hot)
      scales the unit or connection, so a dropped row is off for that step;
    * architecture steps: ProxylessNAS samples two of the ``N`` paths and activates one of
      them with the softmax of their two logits; with ``N = 2`` the two are always keep and
      drop, so one path per row is drawn from ``p`` itself, and ``∂L/∂α`` is Eq. 4 on
      ``∂L/∂g`` (:func:`binary_gate_grad`), ``∂L/∂g_keep`` the gradient of the keep weight
      and ``∂L/∂g_drop = 0`` (the drop path outputs zero). The reference's rescaling of the
      two updated logits keeps the mass of the paths not sampled; with both sampled it is a
      common shift that changes no probability, and is not done;
    * memory of one path per gate: the drop path is the zero output, so nothing of it is
      kept for the backward pass;
    * cost loss: ``cost_weight · E[cost] / cost₀``, the expected parameters, MACs or
      latency under the keep probabilities (:meth:`supernet.search.budget.CostModel.expected`,
      differentiable in ``α``; tied units count as their group), relative to the cost
      ``cost₀`` of the network the search starts from, as ProxylessNAS adds
      ``λ · E[latency]``;
    * measuring (phase ``"eval"``): the most likely path of every row.

    Args:
        cost_weight: ``λ`` (0: no cost loss).
        metric: ``"params"``, ``"macs"`` or ``"latency"``
            (:data:`supernet.search.budget.METRICS`); a search with a budget
            (``module.budget``) counts the budget's metric instead.

    Examples:
        >>> import torch
        >>> relax = BinaryUnitGates(); relax.set_phase("arch")
        >>> alpha = torch.zeros(3, 2, requires_grad=True)
        >>> d = relax.decide("h", alpha)
        >>> sorted(d.weights.sum(-1).tolist()), d.weights.requires_grad
        ([1.0, 1.0, 1.0], True)
    """

    def __init__(self, cost_weight: float = 0.0, metric: str = "params"):
        super().__init__()
        if metric not in BUDGET_METRICS:
            raise ConfigError(f"BinaryUnitGates: metric {metric!r} is unknown; use one of "
                              f"{list(BUDGET_METRICS)}")
        self.cost_weight, self.metric = float(cost_weight), metric
        self._model = None

    def attach(self, module):
        require_unit(module.graph, "BinaryUnitGates",
                     "use BinaryGates (the proxyless strategy) at the layer level")
        self._model = None

    def decide(self, key, alpha):
        if self.phase == "eval":
            return argmax_decision(alpha)
        probs = torch.softmax(alpha.detach(), -1)
        pick = torch.multinomial(probs, 1)[:, 0]
        if self.phase == "weights":
            return Decision(torch.nn.functional.one_hot(pick, 2).to(alpha.dtype))
        return Decision(_BinaryKeep.apply(alpha, pick))

    def expected_cost(self, module) -> torch.Tensor:
        """``E[cost] / cost₀`` under the keep probabilities (differentiable in ``α``)."""
        model = budget_of(module)  # the search's budget, or one of this metric
        if model is None:
            if self._model is None or self._model.graph is not module.graph:
                self._model = Budget(self.metric, fraction=1.0).resolve(module.graph, module)
            model = self._model
        return model.expected(module) / max(model.full, 1e-12)

    def loss(self, module):
        if not self.cost_weight:
            return 0.0
        return self.cost_weight * self.expected_cost(module)

    def extra_repr(self) -> str:
        return f"cost_weight={self.cost_weight}, metric={self.metric!r}"
