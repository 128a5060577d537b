"""The strategy registry: named compositions of a relaxation, a discretization policy,
creation policies and loop settings (as timm's model registry).

============ ==================================================================
``darts``     softmax, first order, argmax discretization
``darts2``    softmax, second order (unrolled)
``pcdarts``   partial channels (K=4) + edge normalization; graph marked partial
``fairdarts`` sigmoid + zero-one loss (w01=10)
``snas``      Gumbel-softmax soft samples, annealed temperature
``gdas``      hard Gumbel-max, one op per edge, τ 10 -> 0.1
``proxyless`` binary gates, two-path sampling, optional cost loss
``spos``      uniform single path, then evolutionary search
============ ==================================================================

Other strategies (P-DARTS, SGAS, DARTS-PT, and at the channel and neuron levels
``progressive_gates`` and ``gradual_magnitude``) register themselves with
:func:`register_strategy`.

Examples:
    >>> s = create_strategy("gdas", tau_max=5.0, epochs=3)
    >>> s.relaxation, s.config["epochs"]
    (GumbelMax(tau=5), 3)
    >>> create_strategy("dartz")
    Traceback (most recent call last):
    ...
    supernet.errors.UnknownNameError: strategy: could not resolve 'dartz' among choices [...
"""

from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from supernet.errors import ConfigError, DuplicateNameError, UnknownNameError, did_you_mean
from supernet.gates import Softmax
from supernet.search.config import SearchConfig
from supernet.search.discretize.layer import ArgmaxDiscretization
from supernet.search.evolution import EvolutionDiscretization
from supernet.search.relaxations import (
    BinaryGates,
    GumbelMax,
    GumbelSoftmax,
    PartialChannels,
    Sigmoid,
    UniformPath,
    mark_partial,
)

__all__ = ["Strategy", "register_strategy", "create_strategy", "list_strategies"]


@dataclass
class Strategy:
    """A search strategy: what :class:`~supernet.search.loop.BilevelSearch` composes.

    Attributes:
        name: the registry name.
        relaxation: how gates act during training.
        discretization: when and how gates become edits.
        creation: policies that grow the space.
        config: :class:`SearchConfig` keys this strategy sets (users override them).
        prepare: ``prepare(graph)`` run once before compiling (e.g. mark partial edges).
        spec: ``(name, overrides)`` that rebuild it (stored in checkpoints).
    """

    name: str
    relaxation: Any
    discretization: Any = None
    creation: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    prepare: Callable | None = None
    spec: tuple | None = None


_STRATEGIES: dict[str, Callable[..., Strategy]] = {}


def register_strategy(name: str, override: bool = False):
    """Decorator registering ``builder(**kwargs) -> Strategy`` under ``name``."""

    def wrap(fn):
        if name in _STRATEGIES and not override:
            raise DuplicateNameError(f"strategy {name!r} is registered already; pass override=True")
        _STRATEGIES[name] = fn
        return fn

    return wrap


def list_strategies(filter: str | None = None) -> list[str]:
    """Registered names, sorted; ``filter`` is a glob such as ``"*darts*"``."""
    return sorted(n for n in _STRATEGIES if filter is None or fnmatch.fnmatch(n, filter))


def create_strategy(name: str, **overrides) -> Strategy:
    """Build strategy ``name``. Keys of :class:`SearchConfig` in ``overrides`` set loop
    settings; the others go to the strategy's builder (relaxation and policy arguments)."""
    try:
        builder = _STRATEGIES[name]
    except (KeyError, TypeError):
        raise UnknownNameError(
            f"strategy: could not resolve {name!r} among choices {list_strategies()}."
            f"{did_you_mean(name, _STRATEGIES)}"
        ) from None
    keys = set(SearchConfig.keys())
    loop = {k: v for k, v in overrides.items() if k in keys}
    rest = {k: v for k, v in overrides.items() if k not in keys}
    params = inspect.signature(builder).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for k in rest:
            if k not in params:
                raise ConfigError(
                    f"strategy {name!r}: unknown key {k!r}.{did_you_mean(k, [*params, *keys])} "
                    f"It takes {list(params)} and the search config keys"
                )
    strategy = builder(**rest)
    strategy.config = {**strategy.config, **loop}
    SearchConfig.from_dict(strategy.config)  # fail now, naming the key
    strategy.spec = (name, dict(overrides))
    return strategy


@register_strategy("darts")
def _darts():
    return Strategy("darts", Softmax(), ArgmaxDiscretization())


@register_strategy("darts2")
def _darts2():
    return Strategy("darts2", Softmax(), ArgmaxDiscretization(), config={"second_order": True})


@register_strategy("pcdarts")
def _pcdarts(k: int = 4, edge_norm: bool = True):
    # PC-DARTS (CIFAR-10): batch 256, weight lr 0.1 cosine to 0, arch lr 6e-4, 15 warm-up
    # epochs (architecture frozen)
    return Strategy("pcdarts", PartialChannels(k, edge_norm), ArgmaxDiscretization(),
                    config={"batch_size": 256, "w_lr": 0.1, "w_lr_min": 0.0, "arch_lr": 6e-4,
                            "warmup_epochs": 15},
                    prepare=lambda g: mark_partial(g, k))


@register_strategy("fairdarts")
def _fairdarts(w01: float = 10.0):
    # DARTS' loop settings and discretization (no 0.85 threshold): see relaxations/sigmoid.py
    return Strategy("fairdarts", Sigmoid(w01), ArgmaxDiscretization())


@register_strategy("snas")
def _snas(tau0: float = 1.0, tau_min: float = 0.33):
    return Strategy("snas", GumbelSoftmax(tau0, tau_min), ArgmaxDiscretization())


@register_strategy("gdas")
def _gdas(tau_max: float = 10.0, tau_min: float = 0.1):
    return Strategy("gdas", GumbelMax(tau_max, tau_min), ArgmaxDiscretization())


@register_strategy("proxyless")
def _proxyless(cost=None, cost_weight: float = 0.0, metric: str = "flops"):
    # ProxylessNAS: Adam on the binary-gate logits with lr 1e-3, betas (0, 0.999), no decay
    return Strategy("proxyless", BinaryGates(cost, cost_weight, metric), ArgmaxDiscretization(),
                    config={"arch_lr": 1e-3, "arch_betas": (0.0, 0.999), "arch_weight_decay": 0.0})


@register_strategy("spos")
def _spos(population: int = 50, iterations: int = 20, topk: int = 10,
          mutation_prob: float = 0.1, bn_batches: int = 20, val_batches: int | None = None,
          constraint=None, seed: int = 0):
    return Strategy("spos", UniformPath(seed),
                    EvolutionDiscretization(population, iterations, topk, mutation_prob,
                                            bn_batches, val_batches, constraint, seed),
                    config={"arch_update": False})

