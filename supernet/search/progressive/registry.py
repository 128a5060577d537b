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
``sgas``     Criterion 1; 50 epochs (DARTS cell), batch 64 (+8 after each decision epoch),
             lr 0.025 -> 0.001, arch lr 3e-4
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

The P-DARTS, SGAS, DARTS-PT, PC-DARTS and ProxylessNAS families at the channel and neuron
levels, each ending at the strategy's ``target``
(``create_strategy("unit_sgas", target={"metric": "params", "fraction": 0.5})``, a
:class:`~supernet.search.budget.Budget`; half the parameters without one). The search adds
the budget's resource term to the architecture loss unless ``target.weight`` is 0 (the
papers have no such term; ProxylessNAS' own cost loss is ``unit_proxyless``'s
``cost_weight``):

================== ===================================================================
``unit_pdarts``     softmax gates; stages that each end by removing the lowest keep
                    probabilities (:class:`UnitPDARTS`)
``unit_sgas``       softmax gates; the most important and certain variables decided at
                    each decision epoch (:class:`UnitSGAS`, Criterion 1)
``unit_sgas2``      the same with Criterion 2 (stability)
``unit_darts_pt``   softmax gates; perturbation-based decisions group by group with
                    tuning in between (:class:`UnitDartsPT`)
``unit_pcdarts``    partial rows and edge normalization (:class:`PartialUnits`), then the
                    lowest keep probabilities removed to the target (:class:`KeepToTarget`)
``unit_proxyless``  binary keep/drop gates with the expected-cost loss
                    (:class:`BinaryUnitGates`), then :class:`KeepToTarget`
================== ===================================================================

They register ``unit_pdarts``, ``unit_sgas``, ``unit_darts_pt`` and ``keep_to_target`` in
:data:`~supernet.search.discretize.DISCRETIZATIONS` and ``partial_units`` and
``binary_unit_gates`` in :data:`~supernet.search.relaxations.RELAXATIONS`.
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
from supernet.search.progressive.unit_common import KeepToTarget
from supernet.search.progressive.unit_darts_pt import UnitDartsPT
from supernet.search.progressive.unit_gates import ProgressiveGates
from supernet.search.progressive.unit_pdarts import UnitPDARTS
from supernet.search.progressive.unit_sgas import UnitSGAS
from supernet.search.relaxations import RELAXATIONS
from supernet.search.relaxations.partial import PartialUnits
from supernet.search.relaxations.proxyless import BinaryUnitGates
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
        """P-DARTS (Chen et al., ICCV 2019): deeper stages, candidates pruned, skips capped."""
        policy = pdarts_from_options(space, space_kwargs, stages, max_skip, seed)
        # the stages fix the epochs; the space is rebuilt deeper at each stage
        return Strategy("pdarts", policy.relaxation, policy, [],
                        config={"epochs": policy.epochs, "batch_size": 96, "w_lr": 0.025,
                                "w_lr_min": 0.0, "arch_lr": 6e-4, "arch_betas": (0.5, 0.999),
                                "arch_weight_decay": 1e-3},
                        build_space=policy.build_space, owns={"epochs": "strategy.stages"},
                        levels=("layer",))

    def _sgas(criterion):
        def build(warmup: int = 9, interval: int = 5, history: int = 4, batch_increase: int = 8):

            policy = SGAS(criterion, warmup, interval, history, batch_increase)
            epochs = warmup + interval * 7 + 1 + 5  # 8 decisions in a DARTS cell
            return Strategy("sgas" if criterion == 1 else "sgas2", Softmax(), policy, [],
                            config={"epochs": epochs, "batch_size": 64, "w_lr": 0.025,
                                    "w_lr_min": 0.001, "arch_lr": 3e-4,
                                    "arch_weight_decay": 1e-3}, levels=("layer",))

        build.__doc__ = (f"SGAS (Li et al., CVPR 2020), criterion {criterion}: greedy edge "
                         "decisions by " + ("importance x certainty" if criterion == 1 else
                                            "importance x certainty x stability") + ".")
        return build

    register_strategy("sgas")(_sgas(1))
    register_strategy("sgas2")(_sgas(2))
    _register_unit_strategies(register_strategy, Strategy)

    @register_strategy("darts_pt")
    def _darts_pt(start: int = 50, interval: int = 5, order: str = "random", seed: int = 0,
                  batch_stats: bool = True):
        """DARTS-PT (Wang et al., ICLR 2021): ops chosen by the accuracy their removal costs."""
        policy = DartsPT(start, interval, order=order, seed=seed, batch_stats=batch_stats)
        return Strategy("darts_pt", Softmax(), policy, [],
                        config={"epochs": start + interval * 16 + 1, "batch_size": 64,
                                "w_lr": 0.025, "w_lr_min": 0.001, "arch_lr": 3e-4,
                                "arch_weight_decay": 1e-3}, levels=("layer",))


def _register_unit_strategies(register_strategy, Strategy) -> None:
    @register_strategy("progressive_gates")
    def _progressive_gates(warmup: int | None = None, interval: int = 1,
                           decisions: int | None = None):
        """Unit levels: the most certain keep/drop gates decided, a group at a time."""
        return Strategy("progressive_gates", Softmax(),
                        ProgressiveGates(warmup, interval, decisions),
                        levels=("channel", "neuron"))

    @register_strategy("gradual_magnitude")
    def _gradual_magnitude(sparsity: float = 0.9, initial: float = 0.0, start: int = 0,
                           interval: int = 1, steps: int | None = None, scope: str = "layer",
                           edges=None):
        """Gradual magnitude pruning (Zhu and Gupta, 2017) on a cubic schedule."""
        policy = GradualMagnitude(sparsity, initial, start, interval, steps, scope, edges)
        return Strategy("gradual_magnitude", None, policy, config={"arch_update": False},
                        prepare=ungate_all, levels=("channel", "neuron"))

    _register_unit_family(register_strategy, Strategy)


def _register_unit_family(register_strategy, Strategy) -> None:
    """The P-DARTS, SGAS, DARTS-PT, PC-DARTS and ProxylessNAS strategies of the unit
    levels. Each ends at the strategy's ``target`` (a
    :class:`~supernet.search.budget.Budget`, which the search resolves into
    ``module.budget``), or at half the parameters without one."""
    levels = ("channel", "neuron")

    @register_strategy("unit_pdarts")
    def _unit_pdarts(stages=3, warmup: float = 0.4):
        """P-DARTS at the unit levels: units pruned in stages to the target size."""
        return Strategy("unit_pdarts", Softmax(), UnitPDARTS(0.5, stages, warmup), levels=levels)

    def _unit_sgas(criterion):
        def build(warmup: int | None = None, interval: int = 1, rounds: int | None = None,
                  history: int = 4):
            policy = UnitSGAS(0.5, criterion, warmup, interval, rounds, history)
            return Strategy("unit_sgas" if criterion == 1 else "unit_sgas2", Softmax(), policy,
                            levels=levels)

        build.__doc__ = (f"SGAS at the unit levels, criterion {criterion}: greedy decisions "
                         "of unit groups, to the target size.")
        return build

    register_strategy("unit_sgas")(_unit_sgas(1))
    register_strategy("unit_sgas2")(_unit_sgas(2))

    @register_strategy("unit_darts_pt")
    def _unit_darts_pt(tune: int = 1, order: str = "random", seed: int = 0,
                       max_batches: int | None = None):
        """DARTS-PT at the unit levels: units removed by what their removal costs."""
        policy = UnitDartsPT(0.5, tune, order, seed, max_batches)
        return Strategy("unit_darts_pt", Softmax(), policy, levels=levels)

    @register_strategy("unit_pcdarts")
    def _unit_pcdarts(k: int = 4, edge_norm: bool = True):
        """PC-DARTS at the unit levels: 1/k of the units through each gated group."""
        return Strategy("unit_pcdarts", PartialUnits(k, edge_norm), KeepToTarget(0.5),
                        levels=levels)

    @register_strategy("unit_proxyless")
    def _unit_proxyless(cost_weight: float = 0.0, metric: str = "params"):
        """ProxylessNAS at the unit levels: binary keep/drop gates, a cost loss."""
        # ProxylessNAS: Adam on the binary-gate logits with lr 1e-3, betas (0, 0.999); the
        # cost loss counts the target's metric when the search has a target
        return Strategy("unit_proxyless", BinaryUnitGates(cost_weight, metric),
                        KeepToTarget(0.5),
                        config={"arch_lr": 1e-3, "arch_betas": (0.0, 0.999),
                                "arch_weight_decay": 0.0}, levels=levels)


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
                        ("gradual_magnitude", GradualMagnitude), ("unit_pdarts", UnitPDARTS),
                        ("unit_sgas", UnitSGAS), ("unit_darts_pt", UnitDartsPT),
                        ("keep_to_target", KeepToTarget),
                        ("iterative_magnitude", IterativeMagnitude)):
    DISCRETIZATIONS.register(_name, _factory)
for _name, _factory in (("skip_dropout", SkipDropout), ("partial_units", PartialUnits),
                        ("binary_unit_gates", BinaryUnitGates)):
    RELAXATIONS.register(_name, _factory)
del _name, _factory
