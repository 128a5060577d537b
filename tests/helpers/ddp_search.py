"""A small search run the same way on one process and under ``torchrun`` (see
``test_distributed.py``): ``python ddp_search.py OUT STRATEGY [second_order|paths]``, or
``python ddp_search.py OUT norms``.

The main process saves the searched module's state, the history and the edit log to OUT.
With ``paths``, a GDAS search of a space with a dropout candidate on batches that split
unevenly (7 samples: 4 and 3), every process saves the paths it sampled to ``OUT.<rank>``.
"""

import contextlib
import json
import sys

import torch
from search_graphs import chain, darts_like, data

from supernet.distributed import Replicas
from supernet.search import BilevelSearch


def main(out: str, strategy: str, second_order: bool) -> None:
    torch.set_num_threads(1)
    # no batch norm in this space: a step over split batches is exactly the whole batch's
    graph = chain(C=4, n=2)
    config = {"epochs": 2, "batch_size": 12, "seed": 3, "second_order": second_order,
              "arch_lr": 0.05, "w_lr": 0.05}
    search = BilevelSearch(graph, data(48, seed=1), strategy=strategy, config=config)
    result = search.run()
    if Replicas().main:
        torch.save({"state": result.module.state_dict(), "history": result.history,
                    "edits": json.dumps(result.log.to_list(), sort_keys=True),
                    "world": Replicas().world}, out)


def sampled_paths(out: str) -> None:
    torch.set_num_threads(1)
    graph = chain(C=4, n=2, ops=("conv_3x3", "dropout", "skip_connect"))
    search = BilevelSearch(graph, data(42, seed=2), strategy="gdas",
                           config={"epochs": 2, "batch_size": 7, "seed": 5},
                           discretization=None)
    paths = []
    search.module.relaxation.register_forward_hook(
        lambda m, args, decisions: paths.append({k: d.active for k, d in decisions.items()}))
    search.run()
    torch.save(paths, f"{out}.{Replicas().rank}")


def norms(out: str, synced: bool = True) -> dict:
    """A first-order DARTS search (no discretization) of a cell space with batch norm
    everywhere (an affine stem, non-affine preprocessing and candidate ops) on batches that
    split unevenly (7 samples: 4 and 3): its architecture parameters, weights and batch-norm
    running statistics, saved to ``OUT`` by the main process. Under ``torchrun`` the same search is
    run a second time with every process normalizing by its own part's statistics
    (``OUT.unsynced``)."""
    torch.set_num_threads(1)
    found = {}
    for name, on in ((out, True), (f"{out}.unsynced", False)):
        if not (on or Replicas().active):
            break
        if not on:  # the per-process statistics of a data-parallel run without them
            Replicas.synced_norms = lambda self: contextlib.nullcontext()
        search = BilevelSearch(darts_like(C=4, layers=2), data(42, seed=4), strategy="darts",
                               config={"epochs": 2, "batch_size": 7, "seed": 6,
                                       "arch_lr": 0.05, "w_lr": 0.05},
                               discretization=None)
        module = search.run().module
        found = {**{f"arch.{k}": p.detach().clone() for k, p in module.arch.items()},
                 **{k: v for k, v in module.state_dict().items() if v.is_floating_point()}}
        if Replicas().main:
            torch.save(found, name)
    return found


if __name__ == "__main__":
    if sys.argv[2] == "paths":
        sampled_paths(sys.argv[1])
    elif sys.argv[2] == "norms":
        norms(sys.argv[1])
    else:
        main(sys.argv[1], sys.argv[2], len(sys.argv) > 3 and sys.argv[3] == "second_order")
