"""The configuration of a search: every setting of the bilevel loop, with the defaults of
DARTS (Liu et al., 2019).

Examples:
    >>> c = SearchConfig(epochs=2, batch_size=8)
    >>> c.w_lr, c.arch_lr
    (0.025, 0.0003)
    >>> sorted(c.given)  # what the caller set: it wins over a strategy's defaults
    ['batch_size', 'epochs']
    >>> SearchConfig.from_dict({"epochs": 2, "lr": 0.1})
    Traceback (most recent call last):
    ...
    supernet.errors.ConfigError: search config: unknown key 'lr'. Did you mean 'w_lr'? ...
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

from supernet.compiler.recompute import MEMORY_MODES
from supernet.errors import ConfigError, did_you_mean
from supernet.train.data import resolve_device

__all__ = ["SearchConfig", "track_given", "given_fields", "set_given"]


def track_given(cls):
    """Class decorator of a dataclass: record which fields the caller set, by the
    constructor (positionally or by name) or by assignment afterwards; read them with
    :func:`given_fields`. A field left at its default is not set, even when a caller passes
    the default's value elsewhere: what was set is known, not guessed from the values."""
    fields = frozenset(f.name for f in dataclasses.fields(cls))
    order = [f.name for f in dataclasses.fields(cls)]
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        object.__setattr__(self, "_given", frozenset(order[: len(args)]) | frozenset(kwargs))

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        given = self.__dict__.get("_given")
        if given is not None and name in fields:  # after construction: the caller's
            object.__setattr__(self, "_given", given | {name})

    cls.__init__ = __init__
    cls.__setattr__ = __setattr__
    return cls


def given_fields(obj) -> frozenset:
    """The fields set on ``obj``, an instance of a :func:`track_given` class."""
    return obj.__dict__.get("_given", frozenset())


def set_given(obj, names) -> None:
    """Declare which fields of ``obj`` (a :func:`track_given` instance) count as set."""
    object.__setattr__(obj, "_given", frozenset(names))


@track_given
@dataclass
class SearchConfig:
    """Settings of :class:`~supernet.search.loop.BilevelSearch`.

    Attributes:
        epochs: search epochs.
        batch_size: samples per step, on each split.
        train_portion: when no validation data is given, the fraction of the training
            data used for the weights (the rest trains the architecture).
        w_lr, w_lr_min: weight learning rate, cosine-annealed from ``w_lr`` to ``w_lr_min``
            over the epochs.
        w_momentum, w_weight_decay: SGD momentum and weight decay.
        grad_clip: max norm of the weight gradient (``None``: no clipping).
        arch_lr, arch_betas, arch_weight_decay: Adam on the architecture parameters.
        second_order: DARTS second-order (unrolled) architecture gradient.
        unroll_eps: ``ε = unroll_eps / ‖∇w' L_val‖`` of the finite-difference Hessian-vector
            product.
        check_hypergradient: with ``second_order``, compare the finite-difference
            hypergradient with the exact one (a double backward) every
            ``check_hypergradient``-th architecture step (``True``: every step; ``False``
            or ``0``: never) and warn once when they disagree (cosine < 0.95 or relative
            error > 20%; :class:`supernet.search.unrolled.HypergradientCheck`, kept as the
            search's ``hypergradient_check``). Single-process runs only.
        arch_update: train the architecture parameters (``False`` for SPOS).
        warmup_epochs: first epochs that train the weights only (PC-DARTS: 15).
        drop_path_prob: drop-path rate of edges marked ``drop_path``.
        steps_per_epoch: cap on the steps of an epoch (``None``: one pass over the train
            split).
        eval_batches: validation batches measured at each epoch end (``0``: none,
            ``None``: the whole split).
        seed: seeds the split, the shuffling and the torch/python/numpy generators.
        num_workers: data loader workers.
        progress: show a tqdm progress bar.
        checkpoint_dir: where ``last.safetensors`` is written after every epoch (``None``: nowhere).
        keep_init: initial keep probability of the keep/drop gates of the channel and neuron
            levels, set when a search starts (``None``: the compiled logits, keep = drop).
            The default 0.9 is not the layer level's uniform start: a uniform keep/drop gate
            makes the sampling relaxations (GDAS, SNAS) drop half of every layer's units at
            every step and the mixing ones (DARTS, FairDARTS) scale every synapse by
            ``1/2 * 1/2 * 1/2`` (its two units and itself); measured, both leave the
            weights at chance on ``channel_cnn``/digits and ``neuron_mlp``/MNIST-1D
            (``docs/results_budgets.md``).
        device: where the search runs: ``"auto"`` (a GPU when there is one), ``"cpu"``,
            ``"cuda"``, ``"cuda:N"``. Under ``torchrun`` with GPUs, each process takes the
            GPU of its local rank.
        memory: ``"normal"``, or ``"lean"``: the candidate ops of layer-level gates are
            recomputed in backward (:mod:`supernet.compiler.recompute`): same values and
            gradients, batch-norm statistics updated once per forward, a fraction of the
            peak memory for one more forward of the candidates.

    Which fields the caller set is recorded in :attr:`given` (by the constructor,
    :meth:`from_dict`, :meth:`replace` and assignment): a search merges only those over its
    strategy's loop settings, so ``SearchConfig(batch_size=64)`` and ``{"batch_size": 64}``
    both win over a strategy's 256, and a field left at its default never does, even when
    it equals the default.
    """

    epochs: int = 50
    batch_size: int = 64
    train_portion: float = 0.5
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float | None = 5.0
    arch_lr: float = 3e-4
    arch_betas: tuple = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    second_order: bool = False
    unroll_eps: float = 0.01
    check_hypergradient: bool | int = False
    arch_update: bool = True
    warmup_epochs: int = 0
    drop_path_prob: float = 0.0
    steps_per_epoch: int | None = None
    eval_batches: int | None = 0
    seed: int = 0
    num_workers: int = 0
    progress: bool = False
    checkpoint_dir: str | None = None
    keep_init: float | None = 0.9
    device: str = "auto"
    memory: str = "normal"

    def __post_init__(self):
        self.arch_betas = tuple(self.arch_betas)
        self.validate()

    @property
    def given(self) -> frozenset:
        """The fields the caller set (the others hold the library's defaults)."""
        return given_fields(self)

    def given_dict(self) -> dict:
        """The fields the caller set and their values (what wins over a strategy's)."""
        return {k: v for k, v in self.to_dict().items() if k in self.given}

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict | None = None, **overrides) -> "SearchConfig":
        """Build from a dict (e.g. YAML), failing on unknown keys with the key named."""
        data = {**(data or {}), **overrides}
        known = cls.keys()
        for k in data:
            if k not in known:
                raise ConfigError(
                    f"search config: unknown key {k!r}.{did_you_mean(k, known)} Known keys: {known}"
                )
        return cls(**data)

    def replace(self, **changes) -> "SearchConfig":
        """A copy with ``changes`` (validated, unknown keys named); the fields set are those
        set here and those ``changes`` names."""
        return type(self).from_dict({**self.given_dict(), **changes})

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["arch_betas"] = list(self.arch_betas)
        return out

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first key whose value does not fit."""

        def bad(key, rule):
            raise ConfigError(f"search config: {key}={getattr(self, key)!r}: {rule}")

        def integer(key, low, optional=False):
            v = getattr(self, key)
            if optional and v is None:
                return
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                bad(key, f"must be an int >= {low}" + (" or None" if optional else ""))

        def number(key, low=0.0, strict=True, optional=False):
            v = getattr(self, key)
            if optional and v is None:
                return
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                bad(key, "must be a finite number")
            if (strict and v <= low) or (not strict and v < low):
                bad(key, f"must be {'>' if strict else '>='} {low}")

        integer("epochs", 1)
        integer("batch_size", 1)
        number("train_portion")
        if not 0.0 < self.train_portion < 1.0:
            bad("train_portion", "must be in (0, 1)")
        number("w_lr")
        number("w_lr_min", strict=False)
        if self.w_lr_min > self.w_lr:
            bad("w_lr_min", f"must not exceed w_lr={self.w_lr}")
        number("w_momentum", strict=False)
        number("w_weight_decay", strict=False)
        number("grad_clip", optional=True)
        number("arch_lr")
        if len(self.arch_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.arch_betas):
            bad("arch_betas", "must be two numbers in [0, 1)")
        number("arch_weight_decay", strict=False)
        number("unroll_eps")
        if (not isinstance(self.check_hypergradient, (bool, int))
                or self.check_hypergradient < 0):
            bad("check_hypergradient", "must be True, False or a number of steps >= 0")
        integer("warmup_epochs", 0)
        number("drop_path_prob", strict=False)
        if self.drop_path_prob >= 1.0:
            bad("drop_path_prob", "must be < 1")
        integer("steps_per_epoch", 1, optional=True)
        integer("eval_batches", 0, optional=True)
        integer("seed", 0)
        integer("num_workers", 0)
        for key in ("second_order", "arch_update", "progress"):
            if not isinstance(getattr(self, key), bool):
                bad(key, "must be True or False")
        number("keep_init", optional=True)
        if self.keep_init is not None and not 0.0 < self.keep_init < 1.0:
            bad("keep_init", "must be in (0, 1) or None")
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, str):
            bad("checkpoint_dir", "must be a path string or None")
        if not isinstance(self.device, str):
            bad("device", "must be a string such as 'auto', 'cpu' or 'cuda:0'")
        resolve_device(self.device, "search config: device")
        if self.memory not in MEMORY_MODES:
            bad("memory", f"must be one of {list(MEMORY_MODES)}")
