"""Does Λ-DARTS align the cells? The correlation Λ of the per-cell architecture gradients
during DARTS and Λ-DARTS searches at equal budget, on MNIST-1D.

Per search seed, the 1-D DARTS cell space (``darts1d``, ``--C`` channels, ``--layers``
cells: normal cells at every layer but the reductions at 1/3 and 2/3) is searched by
``darts`` and by ``lambda_darts`` (the stabilizer ``lambda``: λ = 0.125 ramped linearly
from 0, ε₀ = 1e-4, the authors' defaults) with the same data, seed, epochs and steps; the
two searches of a seed run one after the other, alternating which goes first. After every
epoch, Λ (:func:`~supernet.search.stabilizers.lambda_.gradient_correlation`: the mean
pairwise cosine of the gradients each cell gives the shared mixing weights) of the normal
and the reduction cells is measured on the same fixed batch of 256 training signals. The
tables give Λ at the first and last epochs and the search time, mean ± std over the seeds,
and the median ratio of the two searches' times (measured side by side per seed).

    PYTHONPATH=. python benchmarks/lambda_alignment.py --seeds 3
    PYTHONPATH=. python benchmarks/lambda_alignment.py --quick   # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from structural_common import mean_std

STRATEGIES = ("darts", "lambda_darts")


def _probe(batch):
    """A callback measuring Λ of each cell template after every epoch."""
    import torch
    import torch.nn.functional as F

    from supernet.search.stabilizers.lambda_ import LambdaDARTS, gradient_correlation

    x, y = batch
    seen: list[dict] = []

    def callback(state, record):
        m = state.module
        probe = LambdaDARTS()
        with torch.no_grad():
            decisions = m.relaxation(dict(m.arch.items()))
        grads = probe.cell_gradients(m, decisions, lambda g: F.cross_entropy(m(x, gates=g), y))
        seen.append({t: float(gradient_correlation(g)) for t, (_, g) in grads.items()})

    return callback, seen


def search(strategy: str, seed: int, a, steps) -> dict:
    import torch

    torch.set_num_threads(1)
    from search_evidence import _data

    from search_spaces import create_space
    from supernet.search import BilevelSearch

    data = _data()
    gen = torch.Generator().manual_seed(1234)
    x, y = data.train
    idx = torch.randperm(len(y), generator=gen)[:256]
    batch = (x[idx], y[idx])
    callback, seen = _probe(batch)
    config = {"batch_size": 64, "seed": seed, "epochs": a.search_epochs,
              "steps_per_epoch": steps, "eval_batches": 0}
    graph = create_space("darts1d", C=a.C, layers=a.layers)
    t0 = time.perf_counter()
    BilevelSearch(graph, data.train, data.val, strategy=strategy, config=config,
                  discretization=None, callbacks=[callback]).run()
    return {"seconds": time.perf_counter() - t0, "corr": seen}


def _ms(values) -> str:
    return mean_std(values, scale=1.0, digits=3)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="search seeds 0 .. N-1")
    p.add_argument("--search-epochs", type=int, default=6)
    p.add_argument("--steps", type=int, default=20, help="steps per search epoch")
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 seed, 2 epochs of 2 steps")
    a = p.parse_args(argv)
    steps = a.steps
    if a.quick:
        a.seeds, a.search_epochs, steps = 1, 2, 2
    runs = {s: [] for s in STRATEGIES}
    for seed in range(a.seeds):
        order = STRATEGIES if seed % 2 == 0 else STRATEGIES[::-1]
        for s in order:
            runs[s].append(search(s, seed, a, steps))
    print(f"darts1d C={a.C} layers={a.layers}, MNIST-1D, {a.search_epochs} search epochs of "
          f"{steps} steps (batch 64), {a.seeds} seed(s)\n")
    templates = sorted(runs["darts"][0]["corr"][0])
    head = " | ".join(f"Λ {t} epoch 1 | Λ {t} epoch {a.search_epochs}" for t in templates)
    print(f"| strategy | {head} | search s |")
    print("|---" * (2 + 2 * len(templates)) + "|")
    for s in STRATEGIES:
        cells = []
        for t in templates:
            cells.append(_ms([r["corr"][0][t] for r in runs[s]]))
            cells.append(_ms([r["corr"][-1][t] for r in runs[s]]))
        secs = _ms([r["seconds"] for r in runs[s]])
        print(f"| {s} | {' | '.join(cells)} | {secs} |")
    ratio = statistics.median(b["seconds"] / d["seconds"]
                              for d, b in zip(runs["darts"], runs["lambda_darts"]))
    print(f"\nmedian search-time ratio lambda_darts / darts: {ratio:.2f}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
