"""How an edit initializes what it creates, at every level: one :class:`InitPolicy` type and
one registry of policy names, :data:`POLICIES`.

* ``"random"``: the layer's own default initialization.
* ``"zero"``: the created entity starts with zero output (function-preserving): the last
  linear map of a new op is zeroed; new units get random incoming and zero outgoing
  weights; a new connection starts at weight zero.
* ``"split"`` (copy-and-split, Net2Net / network morphism): the created entity copies an
  existing one (an op's kernels are zero-padded to a larger size, which computes the same
  function; a unit copies its incoming weights) and the two share the original's
  contribution, so the output is unchanged; ``noise`` adds Gaussian noise to the copy to
  break the symmetry (then the output changes by about that much).

A name is resolved to an :class:`InitRule`, which does the work: at layer level it
initializes a freshly built op module, at channel and neuron level it draws the values of
new biases and connections. Register a rule of your own with :func:`register_policy`; edit
records (``init="..."``) and the unit synchronization then accept its name.

Examples:
    >>> policy = InitPolicy("split", noise=0.01, seed=3)
    >>> policy.rule.copies, policy.rule.arch
    (True, 'split')
    >>> InitPolicy("ones")
    Traceback (most recent call last):
        ...
    supernet.errors.UnknownNameError: could not resolve init policy 'ones' among ['random', 'split', 'zero']; register one with supernet.init.register_policy
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from supernet.errors import EditError
from supernet.registry import Registry

__all__ = ["InitPolicy", "InitRule", "POLICIES", "register_policy", "resolve_policy",
           "zero_output", "morph_into", "uniform"]

#: Registered init policies, by name.
POLICIES: Registry["InitRule"] = Registry(
    "init policy", hint="register one with supernet.init.register_policy")


def register_policy(name: str, rule: "InitRule", *, override: bool = False) -> "InitRule":
    """Make ``rule`` usable as ``init=name`` by every edit and by the unit synchronization."""
    if not isinstance(rule, InitRule):
        raise EditError(f"init policy {name!r}: register an InitRule instance, got "
                        f"{type(rule).__name__}")
    return POLICIES.register(name, rule, override=override)


def resolve_policy(name: str, where: str = "") -> "InitRule":
    """The rule registered as ``name``; an unknown name fails with the registry's message."""
    return POLICIES.resolve(name, where)


@dataclass(frozen=True)
class InitPolicy:
    """How one edit initializes what it creates.

    Attributes:
        name: a name in :data:`POLICIES` (``"random"``, ``"zero"``, ``"split"``, or one
            registered with :func:`register_policy`).
        noise: standard deviation of the noise added to copies (``"split"``).
        seed: seed of every random draw (``None``: torch's global generator).
        source: what a copy copies: at layer level the name of the candidate op, at channel
            and neuron level ``{node: (new unit ids, template unit ids)}``.
    """

    name: str = "random"
    noise: float = 0.0
    seed: int | None = None
    source: Any = None

    def __post_init__(self):
        resolve_policy(self.name)
        if not isinstance(self.noise, (int, float)) or isinstance(self.noise, bool) \
                or self.noise < 0:
            raise EditError(f"init policy {self.name!r}: noise must be a number >= 0, got "
                            f"{self.noise!r:.60}")

    @property
    def rule(self) -> "InitRule":
        return resolve_policy(self.name)

    def generator(self) -> torch.Generator | None:
        """A generator seeded by :attr:`seed` (``None`` when there is no seed)."""
        if self.seed is None:
            return None
        return torch.Generator().manual_seed(int(self.seed) % (2**63))


def Creation(policy: str = "random", copies=None, noise: float = 0.0,  # noqa: N802
             seed: int | None = None) -> InitPolicy:
    """The unit levels' former init-policy record, ``Creation(policy, copies, noise, seed)``,
    as an :class:`InitPolicy` (``copies`` becomes its ``source``)."""
    warnings.warn("Creation(policy, copies, noise, seed) is InitPolicy(name, noise, seed, "
                  "source=copies) now", DeprecationWarning, stacklevel=2)
    return InitPolicy(policy, noise, seed, copies)


def uniform(n: int, bound: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` values drawn uniformly from ``[-bound, bound]``."""
    return torch.empty(n).uniform_(-bound, bound, generator=generator)


class InitRule:
    """What a named policy does with what an edit creates (the ``"random"`` behaviour).

    Subclass it and override the hooks to define a policy; the class attributes say how
    edits treat it.

    Attributes:
        copies: whether the policy copies an existing entity (then edits need a source).
        arch: how a new candidate op takes its architecture weight, as
            :meth:`supernet.gates.Relaxation.grow` understands it: ``"random"``,
            ``"zero"`` (from the edge's zero candidate) or ``"split"`` (from the source).
    """

    copies: ClassVar[bool] = False
    arch: ClassVar[str] = "random"

    def init_op(self, spec, module: nn.Module, source: nn.Module | None, where: str,
                policy: InitPolicy, generator: torch.Generator | None = None) -> None:
        """Initialize ``module``, an op ``spec`` just built (layer level); ``source`` is
        the op module it copies, when the policy copies."""

    def unit_bias(self, size: int, bound: float | None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Biases of the ``size`` units of a resized node (only created units take them);
        ``bound`` is the default's ``1 / sqrt(fan_in)``, or ``None`` without inputs."""
        if bound is None:
            return torch.zeros(size)
        return uniform(size, bound, generator)

    def connections(self, count: int, bound: float, incoming: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Weights of ``count`` created connections; ``incoming[k]`` says whether the k-th
        joins an existing unit to a created one (an incoming weight of a new unit)."""
        return uniform(count, bound, generator)


class ZeroRule(InitRule):
    """``"zero"``: created ops output zero; created units and connections add nothing."""

    arch = "zero"

    def init_op(self, spec, module, source, where, policy, generator=None):
        zero_output(spec, module, where)

    def unit_bias(self, size, bound, generator=None):
        return torch.zeros(size)

    def connections(self, count, bound, incoming, generator=None):
        vals = torch.zeros(count)
        if incoming.any():
            vals[incoming] = uniform(int(incoming.sum()), bound, generator)
        return vals


class SplitRule(InitRule):
    """``"split"``: created entities copy a source and share its contribution."""

    copies = True
    arch = "split"

    def init_op(self, spec, module, source, where, policy, generator=None):
        if source is None:
            raise EditError(f"{where}: init={policy.name!r} copies an op; give source=")
        morph_into(source, module, where, policy.noise, generator)

    def unit_bias(self, size, bound, generator=None):
        return torch.zeros(size)

    def connections(self, count, bound, incoming, generator=None):
        return torch.zeros(count)


register_policy("random", InitRule())
register_policy("zero", ZeroRule())
register_policy("split", SplitRule())


def zero_output(spec, module: nn.Module, where: str) -> None:
    """Make ``module`` (a freshly built op ``spec``) output zeros, keeping it trainable."""
    if spec.zero:
        return
    if spec.zero_output is None:
        raise EditError(
            f"{where}: op {spec.name!r} has no zero_output hook, so it cannot start at zero "
            "output; use init='split' from a candidate it can copy, init='random', or register "
            "the op with zero_output=..."
        )
    try:
        spec.zero_output(module)
    except (ValueError, AttributeError) as exc:
        raise EditError(f"{where}: op {spec.name!r} cannot start at zero output: {exc}") from None


def _pad_center(src: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """Zero-pad ``src`` symmetrically in its trailing (kernel) dims to ``shape``."""
    if src.dim() != len(shape) or src.dim() < 3 or src.shape[:2] != shape[:2]:
        return None
    pads = []
    for s, t in zip(reversed(src.shape[2:]), reversed(shape[2:])):
        d = t - s
        if d < 0 or d % 2:
            return None
        pads += [d // 2, d // 2]
    return F.pad(src, pads)


def morph_into(src: nn.Module, dst: nn.Module, where: str, noise: float = 0.0,
               generator: torch.Generator | None = None) -> None:
    """Copy ``src``'s parameters and buffers into ``dst`` (same structure, kernels may grow).

    Raises :class:`EditError` naming the first tensor that cannot be carried.
    """
    s_state = src.state_dict()
    d_state = dst.state_dict()
    if list(s_state) != list(d_state):
        raise EditError(
            f"{where}: cannot copy {type(src).__name__} into {type(dst).__name__}: their "
            "tensors differ; split from a candidate of the same structure"
        )
    with torch.no_grad():
        for name, value in s_state.items():
            target = d_state[name]
            if value.shape == target.shape:
                new = value.clone()
            else:
                new = _pad_center(value, target.shape)
                if new is None:
                    raise EditError(
                        f"{where}: tensor {name!r} of shape {tuple(value.shape)} cannot grow "
                        f"into {tuple(target.shape)} (only kernels grow, symmetrically)"
                    )
            if noise and new.is_floating_point() and name in dict(dst.named_parameters()):
                new = new + noise * torch.randn(new.shape, generator=generator).to(new)
            target.copy_(new)
