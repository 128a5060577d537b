"""SDARTS: the mixing weights of the weight step perturbed, at random or adversarially.

Chen & Hsieh, "Stabilizing Differentiable Architecture Search via Perturbation-based
Regularization", ICML 2020. The weights ``w`` are trained on a neighbourhood of the
architecture rather than on the point ``A = softmax(α)`` alone, which smooths the
validation loss landscape in ``α`` (the paper's Eq. 3-4 bound its Hessian norm) and keeps
DARTS from collapsing:

* SDARTS-RS (``mode: random``, Eq. 3): ``min_w E_{δ ~ U[-ε, ε]} L_train(w, A + δ)``, one
  uniform draw per weight step.
* SDARTS-ADV (``mode: adversarial``, Eq. 4): ``min_w max_{||δ||_∞ <= ε} L_train(w, A + δ)``,
  ``δ`` found by projected gradient ascent (PGD) on the training batch.

Done as the authors' code does it (``attacker/perturb.py``, ``train_search.py``, the
``SmoothDARTS`` code that β-DARTS' repository carries):

* the perturbation is on the mixing weights ``softmax(α)``, not on ``α``: the network's
  architecture parameters are replaced by their softmax for the weight step and put back
  after it. ``α`` is never changed, and the architecture step runs unperturbed.
* after each change a row is projected back the authors' way (their ``clip``): clamped to
  ``[0, 1]`` and divided by its sum (a row clamped to all zeros gets a one at its largest
  entry first). So the *drawn* ``δ`` lies in the ε-ball and the weights that mix are
  ``clip(A + δ)``.
* ε grows linearly over the search, ``ε_e = 0.03 + (epsilon - 0.03) e / E`` at epoch ``e``
  (0-based) of ``E``, with ``epsilon = 0.3`` (their ``--epsilon_alpha``).
* PGD (``Linf_PGD_alpha``): the network in eval mode (batch norm on its running statistics,
  none of them updated), a random start ``clip(A + U[-ε, ε])``, 7 steps of
  ``δ <- δ + (2ε / 7) sign(∇_δ L_train)`` each projected to the ε-ball around ``A`` and then
  clipped, and the attack dropped (``δ = 0``) when it ends with a lower training loss
  than ``A`` itself.

In a data-parallel run the random draws are the same on every process (drawn after the
loop synchronizes the generators); each process attacks its own part of the batch.
The perturbed weights replace those of the decisions: a stabilizer listed after
``sdarts`` (``darts_minus``) changes them further, one listed before it is overridden in
the weight step. It applies to relaxations whose decisions carry softmax weights (DARTS'
``softmax``, PC-DARTS' ``partial_channels`` and ``partial_units``, and the relaxations
that wrap them: tied gates at the unit levels, P-DARTS' skip dropout); the
edge-normalization weights of PC-DARTS are not perturbed.

Examples:
    >>> import torch
    >>> clip_rows(torch.tensor([[0.7, -0.2, 0.5]]))
    tensor([[0.5833, 0.0000, 0.4167]])
    >>> s = SDARTS(mode="random")
    >>> [round(s.schedule(e, 50), 4) for e in (0, 25, 49)]
    [0.03, 0.165, 0.2946]
"""

from __future__ import annotations

import torch

from supernet.errors import ConfigError
from supernet.gates import Relaxation, Softmax, _gate_items
from supernet.search.relaxations import PartialChannels, PartialUnits
from supernet.search.stabilizers.base import Stabilizer, with_weights

__all__ = ["SDARTS", "MODES", "clip_rows"]

#: ``mode`` values: SDARTS-RS and SDARTS-ADV.
MODES = ("random", "adversarial")

_SOFTMAX = (Softmax, PartialChannels, PartialUnits)


def clip_rows(w: torch.Tensor) -> torch.Tensor:
    """The authors' projection of perturbed mixing weights: each row clamped to ``[0, 1]``
    and normalized to sum one (a row clamped to zeros keeps a one at its largest entry)."""
    top = torch.nn.functional.one_hot(w.argmax(-1), w.shape[-1]).to(w.dtype)
    c = w.clamp(0.0, 1.0)
    empty = c.sum(-1, keepdim=True) == 0
    c = torch.where(empty, top, c)
    return c / c.sum(-1, keepdim=True)


class SDARTS(Stabilizer):
    """SDARTS' perturbation of the weight step's mixing weights (see the module docstring).

    Args:
        mode: ``"random"`` (SDARTS-RS) or ``"adversarial"`` (SDARTS-ADV).
        epsilon: ε at the end of the search (the authors' 0.3).
        epsilon_min: ε at the first epoch (the authors' 0.03).
        steps: PGD steps (the authors' 7), step size ``2 ε / steps``.
        random_start: PGD starts from a random point of the ball (the authors' ``True``).

    Attributes:
        eps: ε of the current epoch (a buffer: checkpointed).
        perturbed: gate key -> the mixing weights of the current weight step,
            ``clip(A + delta)``.
        delta: gate key -> the perturbation ``δ`` of the current weight step, before the
            projection (in the ε-ball).
    """

    def __init__(self, mode: str = "random", epsilon: float = 0.3, epsilon_min: float = 0.03,
                 steps: int = 7, random_start: bool = True):
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"stabilizer sdarts: mode={mode!r}; expected one of {list(MODES)}")
        for key, v in (("epsilon", epsilon), ("epsilon_min", epsilon_min)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ConfigError(f"stabilizer sdarts: {key}={v!r} must be a number in [0, 1] "
                                  "(a radius on softmax weights)")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"stabilizer sdarts: steps={steps!r} must be an int >= 1")
        self.mode, self.epsilon, self.epsilon_min = mode, float(epsilon), float(epsilon_min)
        self.steps, self.random_start = steps, bool(random_start)
        self.register_buffer("eps", torch.tensor(float(epsilon_min)))
        self.perturbed: dict[str, torch.Tensor] | None = None
        self.delta: dict[str, torch.Tensor] | None = None
        self.module = None

    def options(self) -> dict:
        out = {"mode": self.mode, "epsilon": self.epsilon, "epsilon_min": self.epsilon_min}
        if self.mode == "adversarial":
            out.update(steps=self.steps, random_start=self.random_start)
        return out

    def schedule(self, epoch: int, epochs: int) -> float:
        """ε at ``epoch`` (0-based) of a search of ``epochs``."""
        return self.epsilon_min + (self.epsilon - self.epsilon_min) * epoch / epochs

    def attach(self, module) -> None:
        relax = base = getattr(module, "relaxation", None)
        while isinstance(getattr(base, "base", None), Relaxation):  # tied, skip dropout
            base = base.base
        if not isinstance(base, _SOFTMAX):
            raise ConfigError(
                f"stabilizer sdarts: perturbs softmax mixing weights; the search's relaxation "
                f"is {type(relax).__name__}; use softmax, partial_channels or partial_units")
        self.module = module

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        self.eps.fill_(self.schedule(epoch, epochs))

    # ------------------------------------------------------------------ the weight step
    def decisions(self, module, decisions, phase):
        if phase != "weights" or self.perturbed is None:
            return decisions
        out = dict(decisions)
        for key, w in self.perturbed.items():
            if key in out:
                out[key] = with_weights(out[key], w)
        return out

    def _clean(self, module) -> dict[str, torch.Tensor]:
        """The unperturbed mixing weights ``A`` of every gate (detached), as the relaxation
        decides them (its ``forward``: no stabilizer rewrites them)."""
        self.perturbed = None
        with torch.no_grad():
            decisions = module.relaxation.forward(dict(module.arch.items()))
        return {k: d.weights.detach() for k, d in decisions.items()
                if d.weights is not None and k in _gate_keys(module)}

    def before_weight_step(self, search, batch) -> None:
        clean = self._clean(search.module)
        eps = float(self.eps)
        if self.mode == "random":
            delta = {k: _uniform(a, eps) for k, a in clean.items()}
        else:
            delta = self.attack(search, batch, clean, eps)
        self.delta = delta
        self.perturbed = {k: clip_rows(clean[k] + d) for k, d in delta.items()}

    def attack(self, search, batch, clean, eps: float) -> dict[str, torch.Tensor]:
        """SDARTS-ADV's PGD on the mixing weights (``Linf_PGD_alpha``): per gate key the
        perturbation ``δ`` (``|δ| <= ε``) whose projection ``clip(A + δ)`` mixes in the
        weight step that follows (zero where the attack did not raise the loss)."""
        if not clean:  # every gate decided (a progressive search's last stage)
            return {}
        m = search.module
        inputs, ctx, y = batch
        was = m.training
        m.eval()

        def loss_at(weights):
            self.perturbed = weights
            return search.loss_fn(m(*inputs, **ctx), y)

        try:
            with torch.no_grad():
                before = loss_at(clean)
            delta = {k: _uniform(a, eps) if self.random_start else torch.zeros_like(a)
                     for k, a in clean.items()}
            p = {k: clip_rows(a + delta[k]) for k, a in clean.items()}
            lr = 2.0 * eps / self.steps
            keys = list(p)
            for _ in range(self.steps):
                leaves = {k: p[k].detach().requires_grad_(True) for k in keys}
                grads = torch.autograd.grad(loss_at(leaves), [leaves[k] for k in keys],
                                            allow_unused=True)
                with torch.no_grad():
                    for k, g in zip(keys, grads):
                        ascent = leaves[k] + lr * torch.sign(g) if g is not None else leaves[k]
                        delta[k] = (ascent - clean[k]).clamp(-eps, eps)  # into the ball
                        p[k] = clip_rows(clean[k] + delta[k])
            with torch.no_grad():
                after = loss_at(p)
            if before > after:  # the authors keep the clean point then
                delta = {k: torch.zeros_like(a) for k, a in clean.items()}
        finally:
            self.perturbed = None
            m.train(was)
        return {k: v.detach() for k, v in delta.items()}


def _uniform(a: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.empty_like(a).uniform_(-eps, eps)


def _gate_keys(module) -> set:
    return {k for k, _ in _gate_items(module)}
