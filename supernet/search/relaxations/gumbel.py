"""Gumbel relaxations: soft samples (SNAS) and hard samples with straight-through
gradients (GDAS).

* :class:`SNASGumbel`, SNAS (Xie, Zheng, Liu and Lin, "SNAS: Stochastic Neural
  Architecture Search", ICLR 2019) as the paper and the authors' code (SNAS-Series) define
  it: each forward draws a relaxed one-hot sample ``z = softmax((log p + g) / τ)`` per gate
  (``g`` Gumbel noise, ``p = softmax(α)``, Eq. 3) and mixes every candidate with it. The
  search is single level: ``θ`` and ``α`` take one gradient step together on the same
  training batch, of one loss (the strategy ``snas`` runs the loop's single-level step).
  ``τ`` follows the authors' schedule: linear in the epoch, ``τ_e = max(τ_min, τ0 - (τ0 -
  τ_min) (e + 1) / 150)`` (their ``Temp_Scheduler``; ``τ0 = 1``, ``τ_min = 0.03``, stepped
  once before the first epoch). The resource constraint (Section 2.4) adds ``λ C(Z)`` to
  the loss, ``C`` the cost of the sampled cell: see :class:`SNASGumbel`.
* :class:`GumbelSoftmax`: the same soft samples with an exponential annealing of ``τ`` from
  1 to 0.33 over the run and no resource term, run by the bilevel loop (``α`` on the
  validation split, as DARTS): a simplified variant kept as the strategy
  ``gumbel_softmax_bilevel``; it is not SNAS.
* :class:`GumbelMax`, GDAS (Dong and Yang, "Searching for A Robust Neural Architecture in
  Four GPU Hours", CVPR 2019): the sample is made hard, ``h = one_hot(argmax z)``, and only
  the sampled op runs; the backward pass uses the gradient of ``z`` (straight-through:
  ``h - z.detach() + z``). As the authors' final code (AutoDL-Projects, ``forward_gdas``),
  an edge outputs ``h_k o_k(x) + Σ_{j≠k} h_j``: the unsampled ``h_j`` (value 0) are added
  as scalars, so every candidate's ``h_j`` gets the gradient ``Σ ∂L/∂out`` and a gate whose
  sampled op is ``none`` (output zero, so ``∂L/∂h_k = 0``) still moves its ``α``.
  :class:`GumbelMaxV1` leaves the scalars out (the authors' variant ``forward_gdas_v1``,
  AutoDL-Projects issue 119). ``τ`` decays linearly from 10 to 0.1 over the search. A
  weight step holds ``α`` constant and uses no gradient of ``h``: there each edge outputs
  ``o_k(x)``, the value of the one-hot ``h`` exactly, as the standalone network of the path
  computes it (the authors multiply by ``h_k = 1 - p + p``, one within a rounding, which
  costs a pass over the edge's output and a saved copy of it).

In the ``"eval"`` phase all of them run the most likely candidate of each gate alone.

Examples:
    >>> import torch
    >>> from supernet.search.relaxations.gumbel import SNASGumbel
    >>> relax = SNASGumbel()
    >>> relax.on_epoch_start(0, 10); round(float(relax.tau), 4)  # the authors' first step
    0.9935
    >>> relax.on_epoch_start(149, 150); round(float(relax.tau), 4)
    0.03
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from supernet.compiler.module import module_key
from supernet.cost.layer import gate_costs
from supernet.errors import ConfigError, SearchError
from supernet.gates import Decision, _gate_items
from supernet.search.base import require_layer
from supernet.search.relaxations.base import PathDecision, SearchRelaxation, argmax_decision

__all__ = ["GumbelSoftmax", "SNASGumbel", "GumbelMax", "GumbelMaxV1",
           "StraightThroughDecision", "concrete_log_prob", "gumbel_noise"]


def gumbel_noise(like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log U)`` of the shape of ``like`` (finite)."""
    u = torch.rand_like(like).clamp_(1e-20, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


class _Annealed(SearchRelaxation):
    method = ""

    def __init__(self, tau: float):
        super().__init__()
        self.register_buffer("tau", torch.tensor(float(tau)))

    def _check_finite(self, keys, alphas):
        # a sample of non-finite logits is never finite: GDAS would redraw forever
        for k, a in zip(keys, alphas):
            if not torch.isfinite(a).all():
                raise SearchError(
                    f"{self.method}: the architecture logits of gate {k!r} are not finite "
                    f"({a.detach().flatten()[:8].tolist()}); restore them (e.g. from a "
                    "checkpoint) or lower arch_lr"
                )

    def forward(self, arch):
        # One draw for all gates with the same number of candidates: a few large tensor
        # ops instead of a handful per gate.
        if self.phase == "eval":
            return {k: argmax_decision(a) for k, a in arch.items()}
        groups: dict[tuple, list[str]] = {}
        for k, a in arch.items():
            groups.setdefault((a.shape[-1], a.dtype, a.device), []).append(k)
        out = {}
        for keys in groups.values():
            alpha = torch.cat([arch[k] for k in keys])
            if not torch.isfinite(alpha).all():
                self._check_finite(keys, [arch[k] for k in keys])
            decisions = self._decide_rows(alpha)
            rows = 0
            for k in keys:
                n = arch[k].shape[0]
                out[k] = decisions(rows, rows + n)
                rows += n
        return out

    def decide(self, key, alpha):
        if self.phase == "eval":
            return argmax_decision(alpha)
        self._check_finite([key], [alpha])
        return self._decide_rows(alpha)(0, alpha.shape[0])

    def extra_repr(self) -> str:
        return f"tau={float(self.tau):.4g}"


class GumbelSoftmax(_Annealed):
    """Soft Gumbel-softmax samples, every candidate runs; ``τ`` annealed exponentially.

    A simplified variant of SNAS (its relaxation alone: no resource term, another
    temperature schedule, run bilevel by the strategy ``gumbel_softmax_bilevel``); SNAS
    itself is :class:`SNASGumbel`.

    Args:
        tau0: initial temperature (1 in the paper).
        tau_min: temperature reached at the last epoch; annealing is exponential,
            ``τ_e = τ0 (τ_min/τ0)^(e/(E-1))``.
    """

    method = "SNAS"

    def __init__(self, tau0: float = 1.0, tau_min: float = 0.33):
        super().__init__(tau0)
        if not 0 < tau_min <= tau0:
            raise ValueError(f"need 0 < tau_min <= tau0, got tau0={tau0}, tau_min={tau_min}")
        self.tau0, self.tau_min = float(tau0), float(tau_min)

    def on_epoch_start(self, epoch, epochs):
        frac = epoch / max(1, epochs - 1)
        self.tau.fill_(self.tau0 * (self.tau_min / self.tau0) ** frac)

    def sample(self, alpha: torch.Tensor) -> torch.Tensor:
        """A relaxed one-hot sample per row of ``alpha`` (differentiable)."""
        logits = (F.log_softmax(alpha, -1) + gumbel_noise(alpha)) / self.tau
        return torch.softmax(logits, -1)

    def _decide_rows(self, alpha):
        z = self.sample(alpha)
        return lambda i, j: Decision(z[i:j])




#: How :class:`SNASGumbel` makes the resource term differentiable in ``α``.
ESTIMATORS = ("reparametrization", "policy_gradient", "discrete")
#: The cost metrics of the resource term (:func:`supernet.cost.layer.gate_costs`).
RESOURCES = ("params", "flops")


def concrete_log_prob(alpha: torch.Tensor, z: torch.Tensor, tau: float,
                      eps: float = 1e-4) -> torch.Tensor:
    """Log density of the Concrete (Gumbel-softmax) distribution of logits ``alpha`` and
    temperature ``tau`` at ``z``, one value per row (Maddison et al., "The Concrete
    Distribution", ICLR 2017, Eq. 9): ``log (n-1)! + (n-1) log τ + Σ_k (α_k - (τ+1) log
    z_k) - n logsumexp_k(α_k - τ log z_k)``; ``z`` is clamped at ``eps`` as the SNAS code
    does. Invariant to a shift of ``alpha``.

    Examples:
        >>> import torch
        >>> z = torch.tensor([[0.5, 0.5]])  # n = 2, τ = 1, α = 0: the density at z is 1
        >>> round(float(concrete_log_prob(torch.zeros(1, 2), z, 1.0).exp()), 4)
        1.0
    """
    n = alpha.shape[-1]
    logz = torch.log(z.clamp_min(eps))
    return (math.lgamma(n) + (n - 1) * math.log(tau) + (alpha - (tau + 1) * logz).sum(-1)
            - n * torch.logsumexp(alpha - tau * logz, -1))


class SNASGumbel(GumbelSoftmax):
    """SNAS (Xie et al., ICLR 2019): soft Gumbel-softmax samples, the authors' temperature
    schedule and the resource constraint.

    Temperature: ``τ_e = max(τ_min, τ0 - (τ0 - τ_min) (e + 1) / anneal_epochs)`` at epoch
    ``e`` (0-based), the linear schedule of the authors' ``Temp_Scheduler``, which decays over
    150 epochs whatever the run's length and is stepped once before the first epoch.

    Resource constraint (paper Section 2.4: ``E_{Z~p_α}[L(Z)] + λ E_{Z~p_α}[C(Z)]``, ``C``
    the cost of the child network, linear in ``Z``): per gate ``g`` and metric ``m``,
    ``R_gm = Σ_k z_gk c_gmk`` with ``c`` the candidates' costs of our cost model
    (:func:`supernet.cost.layer.gate_costs`: ``"params"`` and ``"flops"``, counted
    multiply-accumulates; a cell template's gate counts all the cells that call it) and
    ``z`` the sample of the current forward pass (``p = softmax(α)`` for a gate no pass has
    sampled yet). With ``log_penalty`` (the authors'
    published runs) the gate's term is ``mean_m log R_gm`` (values below 1 count as 1, as
    in their code), else ``Σ_m R_gm``; the loss adds ``λ Σ_g term_g``. ``estimator`` says how
    its gradient reaches ``α`` (the authors' three): ``"reparametrization"`` (through the soft
    sample ``z``: the setting of their published runs), ``"policy_gradient"`` (the paper's
    score function, Eq. 10: ``log p_α(z) · term(z)`` with the term and ``z`` held constant,
    ``log p_α`` the Concrete density, :func:`concrete_log_prob`) or ``"discrete"`` (the
    exact expectation under ``p = softmax(α)``).

    What differs from the authors' code: they sum per-cell terms over every cell and divide
    by the number of normal (6) and reduction (2) cells, take the log of each cell's cost
    apart, and combine parameters, FLOPs and memory access cost (MAC); here a gate's cost
    is its template's total over the cells, and MAC is not in our cost model (it is left
    out). Weights: ``λ = 1e-2`` with ``log_penalty`` (their 8-cell CIFAR-10 search, the
    "mild constraint" of their released model); ``1.5e-3`` for their 20-cell search. Their
    code does not state the weights of the moderate and aggressive constraints.

    Args:
        tau0: initial temperature (1).
        tau_min: floor of the temperature (0.03).
        anneal_epochs: epochs of the linear decay (150, fixed in the authors' code).
        resource_weight: ``λ`` (0: no resource term).
        resources: the cost metrics (``"params"``, ``"flops"``).
        estimator: one of :data:`ESTIMATORS`.
        log_penalty: the log form of the authors' runs.
    """

    method = "SNAS"

    def __init__(self, tau0: float = 1.0, tau_min: float = 0.03, anneal_epochs: int = 150,
                 resource_weight: float = 0.0, resources=RESOURCES,
                 estimator: str = "reparametrization", log_penalty: bool = True):
        super().__init__(tau0, tau_min)
        if isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, int) \
                or anneal_epochs < 1:
            raise ConfigError(f"SNAS: anneal_epochs must be a positive integer, got "
                              f"{anneal_epochs!r}")
        if estimator not in ESTIMATORS:
            raise ConfigError(f"SNAS: estimator {estimator!r} is unknown; use one of "
                              f"{list(ESTIMATORS)}")
        resources = [resources] if isinstance(resources, str) else list(resources)
        bad = [r for r in resources if r not in RESOURCES]
        if bad or not resources:
            raise ConfigError(f"SNAS: resources {resources} must be a non-empty list of "
                              f"{list(RESOURCES)}")
        if not float(resource_weight) >= 0:
            raise ConfigError(f"SNAS: resource_weight must be >= 0, got {resource_weight!r}")
        self.anneal_epochs = anneal_epochs
        self.resource_weight = float(resource_weight)
        self.resources = tuple(resources)
        self.estimator = estimator
        self.log_penalty = bool(log_penalty)
        self._samples: dict[str, torch.Tensor] = {}
        self._costs: dict[str, torch.Tensor] | None = None

    def on_epoch_start(self, epoch, epochs):
        step = (epoch + 1) / self.anneal_epochs
        self.tau.fill_(max(self.tau_min, self.tau0 - (self.tau0 - self.tau_min) * step))

    def forward(self, arch):
        out = super().forward(arch)
        if self.phase != "eval":
            self._samples = {module_key(k): d.weights for k, d in out.items()}
        return out

    # ---------------------------------------------------------------- resource
    def attach(self, module):
        if self.resource_weight:
            require_layer(module.graph, "SNAS' resource constraint counts the candidate ops "
                          "of layer-level edges", "use resource_weight=0 there")
            self._costs = self.cost_table(module)

    def resync(self, module):
        self._costs = None

    def cost_table(self, module) -> dict[str, torch.Tensor]:
        """Per gate key, a ``(len(resources), K)`` tensor of the candidates' costs."""
        tables = [gate_costs(module, r) for r in self.resources]
        return {module_key(k): torch.tensor([t[k] for t in tables], dtype=torch.float64)
                for k in tables[0]}

    def gate_penalty(self, cost: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The term of one gate: ``cost`` ``(M, K)``, ``z`` ``(K,)`` (sample or probabilities)."""
        r = (cost * z.reshape(1, -1)).sum(-1)
        if not self.log_penalty:
            return r.sum()
        return torch.log(torch.where(r < 1, torch.ones_like(r), r)).mean()

    def loss(self, module):
        if not self.resource_weight:
            return 0.0
        if self._costs is None:
            self._costs = self.cost_table(module)
        total = 0.0
        for key, alpha in _gate_items(module):
            k = module_key(key)
            cost = self._costs[k].to(alpha)
            if self.estimator == "discrete" or k not in self._samples:
                total = total + self.gate_penalty(cost, torch.softmax(alpha, -1))
                continue
            z = self._samples[k].to(alpha)
            if self.estimator == "reparametrization":
                total = total + self.gate_penalty(cost, z)
            else:  # score function: ∇ log p_α(z) · C(z)
                z = z.detach()
                term = self.gate_penalty(cost, z).detach()
                total = total + (concrete_log_prob(alpha, z, float(self.tau)) * term).sum()
        return self.resource_weight * torch.as_tensor(total)

    def extra_repr(self) -> str:
        out = super().extra_repr()
        if self.resource_weight:
            out += (f", resource_weight={self.resource_weight:g}, resources="
                    f"{list(self.resources)}, estimator={self.estimator!r}")
        return out


class StraightThroughDecision(PathDecision):
    """GDAS's hard decision: gate ``i`` outputs ``h_k o_k(x) + Σ_{j≠k} h_j`` (``k`` its
    sampled candidate; the ``h_j``, of value 0, carry the straight-through gradient of
    every unsampled candidate), as the authors' final ``forward_gdas``.

    Where no gradient of ``h`` is wanted (a weight step: ``h`` does not require one), the
    gate outputs ``o_k(x)``, the value of ``h = one_hot(k)`` exactly, as the standalone
    network of the path computes it, without the multiply by ``h_k`` (``1 - p + p``, one
    within a rounding) and the add of the zeros, which cost two passes over the edge's
    output and a saved copy of it."""

    __slots__ = ()

    def mix(self, i, ops, zero, x):
        if not self.weights.requires_grad:
            return super().mix(i, ops, zero, x)
        y = Decision.mix(self, i, ops, zero, x)
        w, k = self.weights[i], self.active[i][0]
        rest = torch.cat([w[:k], w[k + 1:]]).sum()  # exactly 0: each h_j is 0 - p + p
        return y + rest


class GumbelMax(_Annealed):
    """GDAS: one sampled candidate per gate, straight-through gradients.

    Only the sampled op ``k`` of each gate is executed (``Decision.active``); the edge
    outputs ``h_k o_k(x) + Σ_{j≠k} h_j`` (:class:`StraightThroughDecision`), ``h`` the
    straight-through one-hot sample whose gradient reaches every ``α`` through the softmax.

    Args:
        tau_max: temperature at the first epoch (10 in the paper).
        tau_min: temperature at the last epoch (0.1), decayed linearly.
    """

    method = "GDAS"
    decision = StraightThroughDecision

    def __init__(self, tau_max: float = 10.0, tau_min: float = 0.1):
        super().__init__(tau_max)
        if not 0 < tau_min <= tau_max:
            raise ValueError(f"need 0 < tau_min <= tau_max, got {tau_max}, {tau_min}")
        self.tau_max, self.tau_min = float(tau_max), float(tau_min)

    def on_epoch_start(self, epoch, epochs):
        frac = epoch / max(1, epochs - 1)
        self.tau.fill_(self.tau_max - (self.tau_max - self.tau_min) * frac)

    def _decide_rows(self, alpha):
        while True:  # as the reference: redraw the (rare) non-finite sample
            probs = torch.softmax((F.log_softmax(alpha, -1) + gumbel_noise(alpha)) / self.tau, -1)
            if torch.isfinite(probs).all():
                break
        index = probs.detach().argmax(-1)
        hard = F.one_hot(index, alpha.shape[-1]).to(probs.dtype)
        weights = hard - probs.detach() + probs
        active = [[i] for i in index.tolist()]
        cls = self.decision
        return lambda i, j: cls(weights[i:j], active[i:j])


class GumbelMaxV1(GumbelMax):
    """GDAS without the unsampled scalars: an edge outputs ``h_k o_k(x)`` alone (the
    authors' ``forward_gdas_v1``, AutoDL-Projects issue 119), so only the sampled ``h_k``
    has a gradient of its own, and none when the sampled op is ``none``."""

    decision = PathDecision
