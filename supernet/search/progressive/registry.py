"""Named strategies ``"pdarts"``, ``"sgas"``, ``"sgas2"`` and ``"darts_pt"``, registered in
the strategy registry (:mod:`supernet.search.strategies`) when it is present.

Loop settings are those of the reference implementations (CIFAR-10 searches):

=========== ===========================================================================
``pdarts``   3 stages of 25 epochs (75), batch 96, weight lr 0.025 -> 0, arch lr 6e-4;
             the loop must give ``state.rebuild`` and honour ``arch_update``/``lr_cycle``
``sgas``     Criterion 1; 50 epochs (DARTS cell), batch 64, lr 0.025 -> 0.001, arch lr 3e-4
``sgas2``    the same with Criterion 2
``darts_pt`` 50 search epochs, then a round of decisions every 5 epochs: 131 epochs for the
             DARTS cell (14 edges + 3 nodes); arch lr 3e-4
=========== ===========================================================================
"""

from __future__ import annotations

from .darts_pt import DartsPT
from .pdarts import CIFAR10_STAGES, PDARTS, Stage
from .sgas import SGAS

__all__ = ["register_strategies"]


def _space_builder(space: str, space_kwargs: dict | None):
    def build(cells: int):
        from search_spaces import create_space  # the library of spaces sits above supernet

        return create_space(space, layers=cells, **dict(space_kwargs or {}))

    return build


def register_strategies(register_strategy, Strategy) -> None:
    """Register the progressive strategies with ``register_strategy`` (builders return
    ``Strategy(name, relaxation, discretization, creation, config)``)."""

    @register_strategy("pdarts")
    def _pdarts(space: str = "darts", space_kwargs: dict | None = None, stages=None,
                max_skip: int | None = 2, seed: int = 0):
        stages = [Stage(**s) if isinstance(s, dict) else s for s in (stages or CIFAR10_STAGES)]
        policy = PDARTS(_space_builder(space, space_kwargs), stages, max_skip=max_skip,
                        seed=seed)
        return Strategy("pdarts", policy.relaxation, policy, [],
                        config={"epochs": policy.epochs, "batch_size": 96, "w_lr": 0.025,
                                "w_lr_min": 0.0, "arch_lr": 6e-4, "arch_betas": (0.5, 0.999),
                                "arch_weight_decay": 1e-3})

    def _sgas(criterion):
        def build(warmup: int = 9, interval: int = 5, history: int = 4):
            from ...gates import Softmax

            policy = SGAS(criterion, warmup, interval, history)
            epochs = warmup + interval * 7 + 1 + 5  # 8 decisions in a DARTS cell
            return Strategy("sgas" if criterion == 1 else "sgas2", Softmax(), policy, [],
                            config={"epochs": epochs, "batch_size": 64, "w_lr": 0.025,
                                    "w_lr_min": 0.001, "arch_lr": 3e-4,
                                    "arch_weight_decay": 1e-3})

        return build

    register_strategy("sgas")(_sgas(1))
    register_strategy("sgas2")(_sgas(2))

    @register_strategy("darts_pt")
    def _darts_pt(start: int = 50, interval: int = 5, order: str = "random", seed: int = 0,
                  batch_stats: bool = True):
        from ...gates import Softmax

        policy = DartsPT(start, interval, order=order, seed=seed, batch_stats=batch_stats)
        return Strategy("darts_pt", Softmax(), policy, [],
                        config={"epochs": start + interval * 16 + 1, "batch_size": 64,
                                "w_lr": 0.025, "w_lr_min": 0.001, "arch_lr": 3e-4,
                                "arch_weight_decay": 1e-3})


def _register_if_present() -> bool:
    try:
        from ..strategies import Strategy, list_strategies, register_strategy
    except ImportError:  # the registry is not part of this build
        return False
    if "pdarts" not in list_strategies():
        register_strategies(register_strategy, Strategy)
    return True


REGISTERED = _register_if_present()
