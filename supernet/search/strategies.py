"""The strategy registry: named compositions of a relaxation, a discretization policy,
creation policies and loop settings (as timm's model registry).

============ ==================================================================
``darts``     softmax, first order, argmax discretization
``darts2``    softmax, second order (unrolled)
``pcdarts``   partial channels (K=4) + edge normalization; graph marked partial
``fairdarts`` sigmoid + zero-one loss (w01=10)
``snas``      Gumbel-softmax soft samples, single level, τ 1 -> 0.03, resource term
``gdas``      hard Gumbel-max, one op per edge, τ 10 -> 0.1
``gumbel_softmax_bilevel`` soft Gumbel-softmax samples run bilevel (SNAS simplified)
``proxyless`` binary gates, two-path sampling, optional cost loss
``spos``      uniform single path, then evolutionary search
``beta_darts`` ``darts`` + Beta-Decay regularization (β-DARTS), λ 0 -> 50
``darts_minus`` ``darts`` + an auxiliary skip on every edge, β 1 -> 0 (DARTS-)
``sdarts_rs`` ``darts`` + uniform noise on the weight step's mixing weights (SDARTS-RS)
``sdarts_adv`` ``darts`` + a PGD attack on the weight step's mixing weights (SDARTS-ADV)
============ ==================================================================

The last four are ``darts`` with one stabilizer (:mod:`supernet.search.stabilizers`); any
strategy takes stabilizers as a part: ``create_strategy("pcdarts",
stabilizers=["beta_decay"])``. Other strategies (P-DARTS, SGAS, DARTS-PT, and at the channel and neuron levels
``progressive_gates`` and ``gradual_magnitude``) come from
:mod:`supernet.search.progressive.registry`. Every strategy is an entry of
:data:`STRATEGIES` (a :class:`~supernet.registry.Registry`); add one with
:func:`register_strategy`.

A strategy is also composed from registered parts, without a name, as a config writes it::

    create_strategy(relaxation={"name": "gumbel_max", "tau_max": 10.0},
                    discretization="argmax",
                    creation=[{"name": "grow_ops", "ops": ["conv_5x5"], "at": 2}],
                    stabilizers=[{"name": "beta_decay"}],
                    config={"arch_lr": 3e-4})

Each part is a name of its registry (:data:`~supernet.search.relaxations.RELAXATIONS`,
:data:`~supernet.search.discretize.DISCRETIZATIONS`,
:data:`~supernet.search.creation.CREATIONS`,
:data:`~supernet.search.stabilizers.STABILIZERS`; ``creation`` and ``stabilizers`` are
lists of them), a mapping ``{name: ..., **options}`` or, in
Python, the object itself. Without a ``discretization`` the composed strategy discretizes
by ``argmax``; without a ``relaxation`` it takes the discretization's own (P-DARTS' skip
dropout) or ``softmax``. The same keys given with a ``name`` replace the named strategy's
parts.

Loop settings (keys of :class:`SearchConfig`, given as options or in ``config``) are the
user's: they win over the strategy's own, which win over the library's defaults.

Every strategy that searches the channel or neuron level takes a ``target``, the size the
search ends at (:class:`~supernet.search.budget.Budget`: ``metric`` params, macs or
latency, and a ``fraction`` of the full network or an absolute ``value``)::

    create_strategy("gdas", target={"metric": "params", "fraction": 0.5})

The continuous relaxations then add the budget's resource term to the architecture loss
and the final decision keeps what fits the target; SPOS samples candidates at the target;
``gradual_magnitude`` prunes to the sparsity that meets it.

Examples:
    >>> s = create_strategy("gdas", tau_max=5.0, epochs=3)
    >>> s.relaxation, s.config["epochs"]
    (GumbelMax(tau=5), 3)
    >>> create_strategy(relaxation={"name": "gumbel_max", "tau_max": 5.0}).relaxation
    GumbelMax(tau=5)
    >>> create_strategy("darts", target={"metric": "macs", "fraction": 0.25}).budget.metric
    'macs'
    >>> create_strategy("darts", target={"metric": "params", "fraction": 1.5})
    Traceback (most recent call last):
    ...
    supernet.errors.ConfigError: strategy.target.fraction=1.5: must be a number in (0, 1] ...
    >>> create_strategy("dartz")
    Traceback (most recent call last):
    ...
    supernet.errors.UnknownNameError: strategy: could not resolve strategy 'dartz' among [...
    >>> create_strategy(relaxation="gumbel_maks")
    Traceback (most recent call last):
    ...
    supernet.errors.UnknownNameError: strategy.relaxation: could not resolve relaxation ...
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from supernet.errors import ConfigError, did_you_mean
from supernet.gates import Softmax
from supernet.registry import Registry
from supernet.search.budget import Budget
from supernet.search.config import SearchConfig
from supernet.search.creation import CREATIONS
from supernet.search.discretize import DISCRETIZATIONS
from supernet.search.discretize.layer import ArgmaxDiscretization
from supernet.search.discretize.threshold import FairThreshold, drop_zero_ops
from supernet.search.evolution import EvolutionDiscretization
from supernet.search.progressive.gradual import GradualMagnitude
from supernet.search.progressive.registry import register_strategies, ungate_all
from supernet.search.relaxations import (
    RELAXATIONS,
    BinaryGates,
    GumbelMax,
    GumbelSoftmax,
    PartialChannels,
    Sigmoid,
    SNASGumbel,
    UniformPath,
    mark_partial,
)
from supernet.search.stabilizers import SDARTS, STABILIZERS, BetaDecay, DartsMinus, Stabilizer

__all__ = ["Strategy", "STRATEGIES", "PARTS", "COMPONENTS", "register_strategy",
           "create_strategy", "list_strategies", "build_part"]


@dataclass
class Strategy:
    """A search strategy: what :class:`~supernet.search.loop.BilevelSearch` composes.

    Attributes:
        name: the registry name (``"composed"`` for one composed from parts).
        relaxation: how gates act during training.
        discretization: when and how gates become edits.
        creation: policies that grow the space.
        config: :class:`SearchConfig` keys this strategy sets; the keys a user sets win
            over them, and they win over the library's defaults.
        prepare: ``prepare(graph)`` run once before compiling (e.g. mark partial edges).
        spec: ``(name, options)`` that rebuild it (stored in checkpoints).
        build_space: ``build_space(space, options) -> Graph``, for a strategy that builds
            its own networks from the space (P-DARTS: a deeper one at each stage): the run
            driver calls it with the config's space name and options (those taken from the
            data included), and searches the graph it returns (``None``: the run builds
            the space itself).
        owns: loop settings the strategy derives from its own options, each with the key
            that changes it (P-DARTS: ``{"epochs": "strategy.stages"}``); a user value that
            differs fails rather than breaking the schedule.
        levels: the levels of graphs it searches (``"layer"``, ``"channel"``,
            ``"neuron"``).
        budget: the :class:`~supernet.search.budget.Budget` the search ends at (``target``
            option; ``None``: none).
        fit_budget: ``fit_budget(graph, cost_model)``, for a strategy without gates that
            meets a budget by its own options (``gradual_magnitude``: the sparsity), called
            once before the search starts.
        single_level: weights and architecture parameters take one step together on each
            train batch, of one loss (SNAS); the validation split trains nothing.
        stabilizers: :class:`~supernet.search.stabilizers.Stabilizer` s applied in order
            (β-DARTS' regularizer, DARTS-' auxiliary skip, SDARTS' perturbations, ...).
    """

    name: str
    relaxation: Any
    discretization: Any = None
    creation: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    prepare: Callable | None = None
    spec: tuple | None = None
    build_space: Callable | None = None
    owns: dict = field(default_factory=dict)
    levels: tuple = ("layer", "channel", "neuron")
    budget: Budget | None = None
    fit_budget: Callable | None = None
    single_level: bool = False
    stabilizers: list = field(default_factory=list)

    def check_config(self, values: dict, prefix: str = "search config: ") -> None:
        """Fail when ``values`` (loop settings a user set; ``prefix`` says where they are
        set) contradict a setting the strategy owns."""
        for key, option in self.owns.items():
            value = values.get(key)
            if value is not None and key in self.config and value != self.config[key]:
                raise ConfigError(
                    f"{prefix}{key}={value!r}, but strategy {self.name!r} sets {key}="
                    f"{self.config[key]!r} from its own options; leave {key} unset (null), "
                    f"or change {option}"
                )


#: The strategies: ``STRATEGIES.resolve(name)(**options) -> Strategy``.
STRATEGIES: Registry = Registry(
    "strategy", hint="register one with @supernet.search.register_strategy")

#: The keys of a strategy composed from parts (besides the loop settings).
PARTS = ("relaxation", "discretization", "creation", "stabilizers", "config")

#: The parts that are built from a registry (all of :data:`PARTS` but ``config``).
COMPONENTS = PARTS[:-1]

#: The key of a strategy's budget (every strategy, named or composed, takes it).
TARGET = "target"


def register_strategy(name: str, override: bool = False):
    """Decorator registering ``builder(**options) -> Strategy`` under ``name``."""
    return STRATEGIES.register(name, override=override)


def list_strategies(filter: str | None = None) -> list[str]:
    """Registered names, sorted; ``filter`` is a glob such as ``"*darts*"``."""
    return STRATEGIES.list(filter)


def build_part(registry: Registry, value, where: str):
    """The part ``value`` names: a registered name, ``{name: ..., **options}``, or an
    object (returned as it is). Unknown names and options fail naming ``where``."""
    if isinstance(value, str):
        name, options = value, {}
    elif isinstance(value, dict):
        if "name" not in value:
            names = registry.list()
            raise ConfigError(f"{where} needs a 'name' (one of {names}), "
                              f"e.g. {where}: {{name: {names[0] if names else '...'}}}")
        options = dict(value)
        name = options.pop("name")
    else:
        return value
    factory = registry.resolve(name, where)
    _check_options(factory, options, f"{where} {name!r}")
    return factory(**options)


def _check_options(factory, options: dict, what: str, extra=()) -> None:
    """Fail on a key ``factory`` does not take (``extra``: the other keys accepted)."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    takes = [k for k in params if k != "self"]
    for key in options:
        if key not in params:
            also = " and the parts and search config keys" if extra else ""
            raise ConfigError(
                f"{what}: unknown key {key!r}.{did_you_mean(key, [*takes, *extra])} "
                f"It takes {takes}{also}"
            )


def _part_needs(part) -> tuple[Callable | None, dict]:
    """``(prepare, loop settings)`` a built-in part needs from the strategy around it."""
    if isinstance(part, PartialChannels):
        k = part.k
        return (lambda g: mark_partial(g, k)), {}
    if isinstance(part, GradualMagnitude):
        return ungate_all, {"arch_update": False}
    if isinstance(part, (UniformPath, EvolutionDiscretization)):
        return None, {"arch_update": False}
    return None, {}


def _fit_sparsity(policy: GradualMagnitude) -> Callable:
    """``fit_budget`` of a magnitude pruning: the final sparsity of its blocks (each pruned
    by the same fraction, ``scope="layer"``) at which the network costs the target."""

    def fit(graph, model) -> None:
        if policy.scope != "layer":
            raise ConfigError(
                f"strategy.{TARGET}: gradual_magnitude meets a target with scope='layer' "
                f"(every block pruned by one fraction, so the cost is known before "
                f"training); it has scope={policy.scope!r}")
        edges = policy.edges
        if edges is None:
            edges = [(u, v) for u, v, e in graph.nx.edges(data=True)
                     if e["kind"] != "identity" and not e.get("gated")]
        policy.sparsity = model.uniform_sparsity(edges)
        if policy.initial > policy.sparsity:
            raise ConfigError(
                f"strategy.initial={policy.initial} exceeds the sparsity "
                f"{policy.sparsity:.4f} that meets strategy.{TARGET}; lower it")

    return fit


def _compose(strategy: Strategy | None, parts: dict) -> Strategy:
    """``strategy`` with the ``parts`` given replaced (a new one when it is ``None``)."""
    if strategy is None:
        strategy = Strategy("composed", None, None)
        parts.setdefault("discretization", "argmax")
    built = []  # the parts made here: what they need from the strategy is added
    if "discretization" in parts:
        value = parts["discretization"]
        disc = (None if value is None else
                build_part(DISCRETIZATIONS, value, "strategy.discretization"))
        if "epochs" in strategy.owns:  # the schedule of the policy replaced
            strategy.owns = {k: v for k, v in strategy.owns.items() if k != "epochs"}
            strategy.config = {k: v for k, v in strategy.config.items() if k != "epochs"}
        strategy.discretization = disc
        strategy.build_space = getattr(disc, "build_space", None)
        epochs = getattr(disc, "epochs", None)
        if isinstance(epochs, int) and not isinstance(epochs, bool):  # a fixed schedule
            strategy.config = {**strategy.config, "epochs": epochs}
            strategy.owns = {**strategy.owns, "epochs": "strategy.discretization"}
        built.append(disc)
    if "relaxation" in parts:
        value = parts["relaxation"]
        strategy.relaxation = (None if value is None else
                               build_part(RELAXATIONS, value, "strategy.relaxation"))
        built.append(strategy.relaxation)
    elif strategy.relaxation is None and strategy.name == "composed":
        strategy.relaxation = getattr(strategy.discretization, "relaxation", None) or Softmax()
    if "creation" in parts:
        value = parts["creation"]
        strategy.creation = _part_list(CREATIONS, value, "strategy.creation")
        built.extend(strategy.creation)
    if "stabilizers" in parts:
        strategy.stabilizers = _part_list(STABILIZERS, parts["stabilizers"],
                                          "strategy.stabilizers")
    prepares = [strategy.prepare] if strategy.prepare is not None else []
    for part in built:
        prepare, config = _part_needs(part)
        if prepare is not None and prepare not in prepares:
            prepares.append(prepare)
        strategy.config = {**config, **strategy.config}
    strategy.prepare = _chain(prepares)
    return strategy


def _spec_options(options: dict) -> dict:
    """``options`` as a checkpoint keeps them: stabilizer objects of a registered class
    as ``{name: ..., **options}`` (others stay objects, which a checkpoint cannot hold)."""
    value = options.get("stabilizers")
    if not isinstance(value, (list, tuple)):
        return dict(options)
    named = {STABILIZERS.resolve(n): n for n in STABILIZERS.list()}
    items = [{"name": named[type(v)], **v.options()}
             if isinstance(v, Stabilizer) and type(v) in named else v for v in value]
    return {**options, "stabilizers": items}


def _part_list(registry: Registry, value, where: str) -> list:
    """The parts of a list-valued key (one part alone, or ``None``: none), built by
    :func:`build_part`, each named ``where[i]`` in errors."""
    items = [] if value is None else value if isinstance(value, (list, tuple)) else [value]
    return [build_part(registry, v, f"{where}[{i}]") for i, v in enumerate(items)]


def _chain(prepares: list) -> Callable | None:
    """One ``prepare(graph)`` running each of ``prepares`` in turn (``None`` for none)."""
    if len(prepares) < 2:
        return prepares[0] if prepares else None

    def prepare(graph) -> None:
        for fn in prepares:
            fn(graph)

    return prepare


def create_strategy(name: str | None = None, **options) -> Strategy:
    """Build strategy ``name``, or compose one from parts (see the module docstring).

    Keys of :class:`SearchConfig` in ``options`` (or in its ``config`` mapping) set loop
    settings, which win over the strategy's; ``relaxation``, ``discretization``,
    ``creation`` and ``stabilizers`` give parts; the other keys go to the strategy's builder."""
    spec = (name, _spec_options(options))
    budget = Budget.from_config(options.pop(TARGET, None), f"strategy.{TARGET}")
    parts = {k: options.pop(k) for k in COMPONENTS if k in options}
    config = options.pop("config", None)
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError(f"strategy.config must be a mapping of search config keys, got "
                          f"{config!r}")
    keys = SearchConfig.keys()
    loop = {k: v for k, v in options.items() if k in keys}
    rest = {k: v for k, v in options.items() if k not in keys}
    if name is None:
        if not parts:
            raise ConfigError(
                f"strategy: give the name of one of {list_strategies()}, or compose one from "
                f"its parts: {list(PARTS)} (e.g. {{relaxation: gumbel_max, discretization: "
                "argmax}})")
        for k in rest:
            raise ConfigError(
                f"strategy: unknown key strategy.{k} of a composed strategy."
                f"{did_you_mean(k, [*PARTS, TARGET, *keys])} It takes {[*PARTS, TARGET]} and "
                "the search config keys")
        strategy = _compose(None, parts)
    else:
        builder = STRATEGIES.resolve(name, "strategy")
        _check_options(builder, rest, f"strategy {name!r}", [*PARTS, TARGET, *keys])
        strategy = builder(**rest)
        if parts:
            strategy = _compose(strategy, parts)
    for k in config:
        if k not in keys:
            raise ConfigError(f"strategy.config: unknown key {k!r}.{did_you_mean(k, keys)} "
                              f"Known keys: {keys}")
    user = {**loop, **config}
    strategy.check_config(user, "strategy.")
    strategy.config = {**strategy.config, **user}
    SearchConfig.from_dict(strategy.config)  # fail now, naming the key
    if budget is not None and not {"channel", "neuron"} & set(strategy.levels):
        raise ConfigError(
            f"strategy.{TARGET}: strategy {strategy.name!r} searches {list(strategy.levels)}-"
            "level graphs; a size target applies to channel- and neuron-level searches")
    strategy.budget = budget
    if budget is not None and isinstance(strategy.discretization, GradualMagnitude):
        if "sparsity" in rest:
            raise ConfigError(
                f"strategy: give strategy.sparsity or strategy.{TARGET}, not both: the "
                f"target sets the sparsity of {strategy.name!r}")
        strategy.fit_budget = _fit_sparsity(strategy.discretization)
    strategy.spec = spec
    return strategy


@register_strategy("darts")
def _darts():
    """DARTS (Liu et al., ICLR 2019), first order: softmax over candidates, argmax."""
    return Strategy("darts", Softmax(), ArgmaxDiscretization())


@register_strategy("darts2")
def _darts2():
    """DARTS, second order: the architecture gradient through an unrolled step."""
    return Strategy("darts2", Softmax(), ArgmaxDiscretization(), config={"second_order": True})


@register_strategy("pcdarts")
def _pcdarts(k: int = 4, edge_norm: bool = True):
    """PC-DARTS (Xu et al., ICLR 2020): 1/k of the channels, edge normalization."""
    # PC-DARTS (CIFAR-10): batch 256, weight lr 0.1 cosine to 0, arch lr 6e-4, 15 warm-up
    # epochs (architecture frozen)
    return Strategy("pcdarts", PartialChannels(k, edge_norm), ArgmaxDiscretization(),
                    config={"batch_size": 256, "w_lr": 0.1, "w_lr_min": 0.0, "arch_lr": 6e-4,
                            "warmup_epochs": 15},
                    prepare=lambda g: mark_partial(g, k), levels=("layer",))


@register_strategy("fairdarts")
def _fairdarts(w01: float = 10.0, threshold: float = 0.85, mode: str = "sparse"):
    """FairDARTS (Chu et al., ECCV 2020): sigmoid gates, the zero-one loss (``w01``), and
    the threshold discretization (:class:`~supernet.search.discretize.FairThreshold`: an
    op is kept iff its sigmoid weight reaches ``threshold``, 0.85; ``mode`` ``"sparse"`` or
    ``"edge"`` as the reference's ``threshold_sparse`` / ``threshold_edge``).

    The candidate set has no ``none``, as FairDARTS' ``PRIMITIVES``: the strategy's
    ``prepare`` removes the zero candidates from every gated edge of a layer-level graph
    before it is compiled (:func:`~supernet.search.discretize.threshold.drop_zero_ops`),
    so that any space (``darts`` with its eight ops, or a graph of one's own) is searched
    as FairDARTS searches it; unit-level keep/drop gates keep their zero "drop". The loop
    settings stay DARTS' (the strategy searches every level); the reference's search
    (``fairdarts/train_search.py``) is ``batch_size=128, w_lr=0.005, w_lr_min=0.001,
    arch_lr=3e-3, arch_betas=(0.9, 0.999)``, given as options. The old composition (sigmoid
    gates, argmax, ``none`` kept) is ``create_strategy(relaxation="sigmoid",
    discretization="argmax")``."""
    return Strategy("fairdarts", Sigmoid(w01), FairThreshold(threshold, mode),
                    prepare=drop_zero_ops)


@register_strategy("snas")
def _snas(tau0: float = 1.0, tau_min: float = 0.03, anneal_epochs: int = 150,
          resource_weight: float = 0.0, resources=("params", "flops"),
          estimator: str = "reparametrization", log_penalty: bool = True):
    """SNAS (Xie et al., ICLR 2019): Gumbel-softmax samples, single level (``θ`` and ``α``
    stepped together on each train batch, one loss), the authors' temperature schedule and
    the resource constraint (``resource_weight=1e-2``: their mild constraint of 8 cells),
    see :class:`~supernet.search.relaxations.gumbel.SNASGumbel`. The loop's optimizers are
    those of the authors' data-parallel search: SGD on the weights (0.025, cosine, momentum
    0.9, decay 3e-4, clipping at 5), Adam on ``α`` (3e-4, betas (0.5, 0.999), decay 1e-3)."""
    relax = SNASGumbel(tau0, tau_min, anneal_epochs, resource_weight, resources, estimator,
                       log_penalty)
    return Strategy("snas", relax, ArgmaxDiscretization(), single_level=True)


@register_strategy("gumbel_softmax_bilevel")
def _gumbel_softmax_bilevel(tau0: float = 1.0, tau_min: float = 0.33):
    """Gumbel-softmax samples run bilevel (``α`` on the validation split), ``τ`` annealed
    exponentially from ``tau0`` to ``tau_min``, no resource term: a simplified variant of
    SNAS (what ``snas`` ran before it was made exact)."""
    return Strategy("gumbel_softmax_bilevel", GumbelSoftmax(tau0, tau_min),
                    ArgmaxDiscretization())


@register_strategy("gdas")
def _gdas(tau_max: float = 10.0, tau_min: float = 0.1):
    """GDAS (Dong and Yang, CVPR 2019): one Gumbel-max sampled path per step, every
    gate's straight-through scalars in the edge output (the authors' final code)."""
    return Strategy("gdas", GumbelMax(tau_max, tau_min), ArgmaxDiscretization())


@register_strategy("proxyless")
def _proxyless(cost=None, cost_weight: float = 0.0, metric: str = "flops"):
    """ProxylessNAS (Cai et al., ICLR 2019): binary gates, two paths, a cost loss."""
    # ProxylessNAS: Adam on the binary-gate logits with lr 1e-3, betas (0, 0.999), no decay
    return Strategy("proxyless", BinaryGates(cost, cost_weight, metric), ArgmaxDiscretization(),
                    config={"arch_lr": 1e-3, "arch_betas": (0.0, 0.999), "arch_weight_decay": 0.0},
                    levels=("layer",))


@register_strategy("spos")
def _spos(population: int = 50, iterations: int = 20, topk: int = 10,
          mutation_prob: float = 0.1, bn_batches: int = 20, val_batches: int | None = None,
          constraint=None, seed: int = 0):
    """SPOS (Guo et al., ECCV 2020): uniform single paths, then an evolutionary search."""
    return Strategy("spos", UniformPath(seed),
                    EvolutionDiscretization(population, iterations, topk, mutation_prob,
                                            bn_batches, val_batches, constraint, seed),
                    config={"arch_update": False})


@register_strategy("beta_darts")
def _beta_darts(lam_max: float = 50.0, lam_min: float = 0.0, ramp_epochs: int | None = None):
    """β-DARTS (Ye et al., CVPR 2022): DARTS with the Beta-Decay regularization of α.

    First order; :class:`~supernet.search.stabilizers.BetaDecay`, λ linear from ``lam_min``
    to ``lam_max`` over the search."""
    return Strategy("beta_darts", Softmax(), ArgmaxDiscretization(),
                    stabilizers=[BetaDecay(lam_max, lam_min, ramp_epochs)])


@register_strategy("darts_minus")
def _darts_minus(beta: float = 1.0, decay: str = "linear", decay_epochs: int | None = None):
    """DARTS- (Chu et al., ICLR 2021): DARTS with an auxiliary skip on every edge, β 1 -> 0.

    First order; :class:`~supernet.search.stabilizers.DartsMinus`, the coefficient decays
    from ``beta`` to 0 (``decay``: linear or cosine)."""
    return Strategy("darts_minus", Softmax(), ArgmaxDiscretization(),
                    stabilizers=[DartsMinus(beta, decay, decay_epochs)], levels=("layer",))


@register_strategy("sdarts_rs")
def _sdarts_rs(epsilon: float = 0.3, epsilon_min: float = 0.03):
    """SDARTS-RS (Chen & Hsieh, ICML 2020): DARTS with uniform noise on the weight step's mixture.

    First order; :class:`~supernet.search.stabilizers.SDARTS` (``mode="random"``): the
    mixing weights perturbed in ``[-ε, ε]``, ε linear from ``epsilon_min`` to ``epsilon``."""
    return Strategy("sdarts_rs", Softmax(), ArgmaxDiscretization(),
                    stabilizers=[SDARTS("random", epsilon, epsilon_min)])


@register_strategy("sdarts_adv")
def _sdarts_adv(epsilon: float = 0.3, epsilon_min: float = 0.03, steps: int = 7,
                random_start: bool = True):
    """SDARTS-ADV (Chen & Hsieh, ICML 2020): DARTS with a PGD attack on the weight step's mixture.

    First order; :class:`~supernet.search.stabilizers.SDARTS` (``mode="adversarial"``): a
    ``steps``-step PGD attack in the ε-ball, ε linear from ``epsilon_min`` to ``epsilon``."""
    return Strategy("sdarts_adv", Softmax(), ArgmaxDiscretization(),
                    stabilizers=[SDARTS("adversarial", epsilon, epsilon_min, steps,
                                        random_start)])


DISCRETIZATIONS.register("evolution", EvolutionDiscretization)
register_strategies(register_strategy, Strategy)

# DrNAS (supernet.search.relaxations.dirichlet) and Λ-DARTS (the stabilizer ``lambda``,
# supernet.search.stabilizers.lambda_) register their own strategies.
from supernet.search.relaxations.dirichlet import register_strategies as _drnas
from supernet.search.stabilizers.lambda_ import register_strategies as _lambda_darts

_drnas(register_strategy, Strategy)
_lambda_darts(register_strategy, Strategy)

