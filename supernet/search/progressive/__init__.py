"""Progressive discretization: structure decided while the search runs.

============== =====================================================================
:class:`PDARTS`  P-DARTS (Chen et al., ICCV 2019): stages of deeper networks over fewer
                 candidates, skip-connect dropout, at most M skip-connects
:class:`SGAS`    SGAS (Li et al., CVPR 2020): one edge decided per interval by
                 importance x certainty (Criterion 1) x stability (Criterion 2)
:class:`DartsPT` DARTS-PT (Wang et al., ICLR 2021): the op, then the inputs, whose
                 removal hurts validation accuracy most are kept
============== =====================================================================

At the channel and neuron levels (keep/drop gates of units and connections):

=========================== ==========================================================
:class:`ProgressiveGates`   the most certainly dropped gates removed during the search,
                            on Zhu & Gupta's cubic schedule, the rest by argmax
:class:`GradualMagnitude`   Zhu & Gupta's gradual magnitude pruning of ungated blocks
:class:`IterativeMagnitude` Han et al.'s rounds of magnitude pruning and retraining
:class:`UnitPDARTS`         P-DARTS stages: the lowest keep probabilities leave at each
                            stage end, the network shrinking to a size target
:class:`UnitSGAS`           SGAS Criterion 1 or 2 on keep/drop variables: the most
                            important and certain decided at each decision epoch
:class:`UnitDartsPT`        DARTS-PT: what hurts validation accuracy least when removed
                            is dropped, one gate group at a time, tuning in between
:class:`KeepToTarget`       the lowest keep probabilities removed down to a size target
=========================== ==========================================================

The gated ones end at a :class:`~supernet.search.budget.Budget` (parameters, MACs or latency);
PC-DARTS and ProxylessNAS at these levels are relaxations (:class:`~supernet.search.relaxations.PartialUnits`,
:class:`~supernet.search.relaxations.BinaryUnitGates`) discretized by :class:`KeepToTarget`.

Each is a :class:`~supernet.search.base.DiscretizationPolicy` that acts only through
``state.editor``, so every decision is a recorded, replayable edit, and is registered in
:data:`~supernet.search.discretize.DISCRETIZATIONS` by its snake-case name. Importing this
package registers all but :class:`IterativeMagnitude` as the strategies ``"pdarts"``,
``"sgas"``, ``"sgas2"``, ``"darts_pt"``, ``"progressive_gates"`` and ``"gradual_magnitude"``
(:mod:`supernet.search.strategies`), which compose each policy with its relaxation and the
epochs its paper runs, e.g.
``supernet.search.search(graph, train, val, strategy="sgas")``.

Examples:
    >>> from supernet.spaces import create_space
    >>> from supernet.search.strategies import create_strategy
    >>> sgas_epochs(create_space("darts", C=4, layers=3))  # 9 + 5 * 7 + 1 + 5, as the reference
    50
    >>> type(create_strategy("sgas").discretization).__name__
    'SGAS'
"""

from supernet.search.progressive.common import (
    GatedEdge,
    constraints_of,
    gate_probabilities,
    gated_edges,
)
from supernet.search.progressive.darts_pt import DartsPT, darts_pt_epochs, darts_pt_policy
from supernet.search.progressive.gradual import GradualMagnitude, cubic_sparsity
from supernet.search.progressive.iterative import IterativeMagnitude
from supernet.search.progressive.masking import (
    MaskOps,
    RelaxationWrapper,
    batch_statistics,
    using_relaxation,
    zeroed_edges,
)
from supernet.search.progressive.pdarts import (
    CIFAR10_STAGES,
    CIFAR100_STAGES,
    PDARTS,
    Stage,
    dropout_rate,
    pdarts_policy,
)
from supernet.search.progressive.registry import register_strategies
from supernet.search.progressive.sgas import (
    SGAS,
    criteria,
    histogram_intersection,
    normalize,
    sgas_epochs,
    sgas_policy,
)
from supernet.search.progressive.skip_dropout import DropoutDecision, SkipDropout
from supernet.search.progressive.unit_common import FrozenRows, KeepToTarget
from supernet.search.progressive.unit_darts_pt import UnitDartsPT
from supernet.search.progressive.unit_gates import ProgressiveGates
from supernet.search.progressive.unit_pdarts import UnitPDARTS
from supernet.search.progressive.unit_sgas import UnitSGAS, unit_criteria

__all__ = [
    "PDARTS", "Stage", "CIFAR10_STAGES", "CIFAR100_STAGES", "dropout_rate", "pdarts_policy",
    "SGAS", "criteria", "histogram_intersection", "normalize", "sgas_epochs", "sgas_policy",
    "DartsPT", "darts_pt_epochs", "darts_pt_policy",
    "SkipDropout", "DropoutDecision", "MaskOps", "RelaxationWrapper", "using_relaxation",
    "zeroed_edges", "batch_statistics", "GatedEdge", "gated_edges", "gate_probabilities",
    "constraints_of", "register_strategies",
    "ProgressiveGates", "GradualMagnitude", "cubic_sparsity",
    "UnitPDARTS", "UnitSGAS", "unit_criteria", "UnitDartsPT", "KeepToTarget",
    "FrozenRows",
    "IterativeMagnitude",
]
