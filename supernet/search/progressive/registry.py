"""Named strategies ``"pdarts"``, ``"sgas"``, ``"sgas2"``, ``"darts_pt"`` and, at the channel
and neuron levels, ``"progressive_gates"`` and ``"gradual_magnitude"``, which the strategy
registry (:mod:`supernet.search.strategies`) registers with :func:`register_strategies`.

Importing this module registers the progressive policies in
:data:`~supernet.search.discretize.DISCRETIZATIONS` (``pdarts``, ``sgas``, ``darts_pt``,
``progressive_gates``, ``gradual_magnitude``, ``iterative_magnitude``: Han et al.'s rounds
of pruning and retraining, a policy without a strategy of its own) and P-DARTS' relaxation in
:data:`~supernet.search.relaxations.RELAXATIONS` (``skip_dropout``).

A P-DARTS policy builds a deeper network at each stage, so it needs the space: the run
driver gives it through the strategy's ``build_space(space, options)`` hook, which also
builds the network of the first stage (a ``space`` option given by the user is kept).

Loop settings are those of the reference implementations (CIFAR-10 searches):

=========== ===========================================================================
``pdarts``   3 stages of 25 epochs (75), batch 96, weight lr 0.025 -> 0, arch lr 6e-4;
             the loop must give ``state.rebuild`` and honour ``arch_update``/``lr_cycle``
``sgas``     Criterion 1; 50 epochs (DARTS cell), batch 64, lr 0.025 -> 0.001, arch lr 3e-4
``sgas2``    the same with Criterion 2
``darts_pt`` 50 search epochs, then a round of decisions every 5 epochs: 131 epochs for the
             DARTS cell (14 edges + 3 nodes); arch lr 3e-4
=========== ===========================================================================

====================== ================================================================
``progressive_gates``   softmax keep/drop gates (DARTS first order), the most certain
                        drops removed on the cubic schedule (:class:`ProgressiveGates`)
``gradual_magnitude``   no gates (the space's are taken off before compiling) and no
                        architecture step: magnitude pruning of every block to
                        ``sparsity`` on the cubic schedule (:class:`GradualMagnitude`)
====================== ================================================================
"""

from __future__ import annotations

from supernet.gates import Softmax
from supernet.search.discretize import DISCRETIZATIONS
from supernet.search.discretize.units import set_gated
from supernet.search.progressive.darts_pt import DartsPT
from supernet.search.progressive.gradual import GradualMagnitude
from supernet.search.progressive.iterative import IterativeMagnitude
from supernet.search.progressive.pdarts import CIFAR10_STAGES, PDARTS, Stage
from supernet.search.progressive.sgas import SGAS
from supernet.search.progressive.skip_dropout import SkipDropout
from supernet.search.progressive.unit_gates import ProgressiveGates
from supernet.search.relaxations import RELAXATIONS
from supernet.spaces import create_space

__all__ = ["register_strategies", "ungate_all", "pdarts_from_options"]


def _space_builder(space: str, space_kwargs: dict | None):
    def build(cells: int):
        return create_space(space, layers=cells, **dict(space_kwargs or {}))

    return build


def pdarts_from_options(space: str | None = None, space_kwargs: dict | None = None,
                        stages=None, max_skip: int | None = 2, seed: int = 0,
                        **options) -> PDARTS:
    """A :class:`PDARTS` policy from plain options: the networks of its stages are
    ``create_space(space, layers=cells, **space_kwargs)``. ``space=None`` takes the run's
    space through ``policy.build_space(space, options)`` (``"darts"`` outside a run);
    ``stages`` are :class:`Stage` objects or mappings of their fields."""
    stages = [Stage(**s) if isinstance(s, dict) else s for s in (stages or CIFAR10_STAGES)]
    policy = PDARTS(_space_builder(space or "darts", space_kwargs), stages,
                    max_skip=max_skip, seed=seed, **options)

    def build_space(run_space: str, run_options: dict):
        if space is None:  # the run's space, at the depth of each stage
            policy.builder = _space_builder(
                run_space, {k: v for k, v in run_options.items() if k != "layers"})
        return policy.builder(policy.stages[0].cells)

    policy.build_space = build_space
    return policy


def register_strategies(register_strategy, Strategy) -> None:
    """Register the progressive strategies with ``register_strategy`` (builders return
    ``Strategy(name, relaxation, discretization, creation, config, ...)``)."""

    @register_strategy("pdarts")
    def _pdarts(space: str | None = None, space_kwargs: dict | None = None, stages=None,
                max_skip: int | None = 2, seed: int = 0):
        policy = pdarts_from_options(space, space_kwargs, stages, max_skip, seed)
        # the stages fix the epochs; the space is rebuilt deeper at each stage
        return Strategy("pdarts", policy.relaxation, policy, [],
                        config={"epochs": policy.epochs, "batch_size": 96, "w_lr": 0.025,
                                "w_lr_min": 0.0, "arch_lr": 6e-4, "arch_betas": (0.5, 0.999),
                                "arch_weight_decay": 1e-3},
                        build_space=policy.build_space, owns={"epochs": "strategy.stages"},
                        levels=("layer",))

    def _sgas(criterion):
        def build(warmup: int = 9, interval: int = 5, history: int = 4):

            policy = SGAS(criterion, warmup, interval, history)
            epochs = warmup + interval * 7 + 1 + 5  # 8 decisions in a DARTS cell
            return Strategy("sgas" if criterion == 1 else "sgas2", Softmax(), policy, [],
                            config={"epochs": epochs, "batch_size": 64, "w_lr": 0.025,
                                    "w_lr_min": 0.001, "arch_lr": 3e-4,
                                    "arch_weight_decay": 1e-3}, levels=("layer",))

        return build

    register_strategy("sgas")(_sgas(1))
    register_strategy("sgas2")(_sgas(2))
    _register_unit_strategies(register_strategy, Strategy)

    @register_strategy("darts_pt")
    def _darts_pt(start: int = 50, interval: int = 5, order: str = "random", seed: int = 0,
                  batch_stats: bool = True):

        policy = DartsPT(start, interval, order=order, seed=seed, batch_stats=batch_stats)
        return Strategy("darts_pt", Softmax(), policy, [],
                        config={"epochs": start + interval * 16 + 1, "batch_size": 64,
                                "w_lr": 0.025, "w_lr_min": 0.001, "arch_lr": 3e-4,
                                "arch_weight_decay": 1e-3}, levels=("layer",))


def _register_unit_strategies(register_strategy, Strategy) -> None:
    @register_strategy("progressive_gates")
    def _progressive_gates(warmup: int | None = None, interval: int = 1,
                           decisions: int | None = None):

        return Strategy("progressive_gates", Softmax(),
                        ProgressiveGates(warmup, interval, decisions),
                        levels=("channel", "neuron"))

    @register_strategy("gradual_magnitude")
    def _gradual_magnitude(sparsity: float = 0.9, initial: float = 0.0, start: int = 0,
                           interval: int = 1, steps: int | None = None, scope: str = "layer",
                           edges=None):
        policy = GradualMagnitude(sparsity, initial, start, interval, steps, scope, edges)
        return Strategy("gradual_magnitude", None, policy, config={"arch_update": False},
                        prepare=ungate_all, levels=("channel", "neuron"))


def ungate_all(graph) -> None:
    """Take every keep/drop gate off a channel- or neuron-level graph (before compiling):
    a magnitude pruning trains no architecture parameter. Layer-level graphs have no such
    gate: it leaves them as they are."""
    nodes = [n for n, d in graph.nx.nodes(data=True) if d.get("gated")]
    edges = [(u, v) for u, v, e in graph.nx.edges(data=True) if e.get("gated")]
    if nodes or edges:
        set_gated(graph, units=nodes, connections=edges, gated=False)


for _name, _factory in (("pdarts", pdarts_from_options), ("sgas", SGAS),
                        ("darts_pt", DartsPT), ("progressive_gates", ProgressiveGates),
                        ("gradual_magnitude", GradualMagnitude),
                        ("iterative_magnitude", IterativeMagnitude)):
    DISCRETIZATIONS.register(_name, _factory)
RELAXATIONS.register("skip_dropout", SkipDropout)
del _name, _factory
