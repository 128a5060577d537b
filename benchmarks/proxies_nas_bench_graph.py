"""Zero-cost proxies against NAS-Bench-Graph (Cora), and the cost of the whole proxy set.

NAS-Bench-Graph (Qin et al., NeurIPS 2022 Datasets and Benchmarks) ships the trained
results of its 26,206 GNN architectures offline, but not the graphs they were trained on,
so the proxies that read data cannot be computed on Cora here. What is computed, for
``--archs`` architectures drawn uniformly (seeded) from the benchmark's table, per seed:

* ``params``, ``flops``: our proxies, on the ``gnn`` space built at Cora's published sizes
  (1433 input features, 7 classes) and the benchmark's hyper-parameters for Cora (the
  paper's per-data-set table): hidden width 256 (``--hidden``), no pre-processing and one
  post-processing linear layer. The script prints how close our parameter counts come to
  the table's own. A ``skip`` chain from the raw input (1433 features into 256-wide
  nodes) is refused by our space, so those 1612 of the 26,206 architectures are not drawn:
  the draw is uniform over the others;
* ``bench params``: the benchmark's own parameter count;
* ``synflow (random graph)``: our ``synflow`` on a random graph with Cora's node and edge
  counts (2708 nodes, 10556 directed edges, drawn uniformly, seeded): data-free except for
  the edges, which are not Cora's.

The table gives, per proxy, the Spearman correlation ρ with the benchmark's test accuracy
(mean ± std over the seeds, each seed its own draw of architectures, weights and random
graph) and the 95% bootstrap interval of ρ over the seeds' draws pooled (``--boot``
resamples). The cost model counts the message-passing layers as :mod:`supernet.ops.gnn`
says: parameters exactly, MACs as the dense transforms of one node (every weight-matrix
entry applied once per node), message passing over edges not counted.

Then the seconds each proxy takes on one sampled NAS-Bench-201 network (C=16, N=5, 10
classes) at batch 64 on 32x32 inputs, on one thread: medians over ``--seeds`` networks.

    PYTHONPATH=. python benchmarks/proxies_nas_bench_graph.py            # the full run
    PYTHONPATH=. python benchmarks/proxies_nas_bench_graph.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

import numpy as np
import torch
from proxies_darts1d import spearman_ci
from scipy.stats import spearmanr

from supernet import compile
from supernet.edits import Editor
from supernet.search.choices import choice_space
from supernet.search.proxies import PROXIES, score
from supernet.spaces import create_space

#: Cora (Planetoid) as NAS-Bench-Graph uses it: nodes, directed edges, features, classes.
CORA = {"nodes": 2708, "edges": 10556, "features": 1433, "classes": 7}
#: The hidden width of NAS-Bench-Graph's models on Cora (the paper's hyper-parameter table).
HIDDEN = 256
COMMAND = "PYTHONPATH=. python benchmarks/proxies_nas_bench_graph.py"


def _random_graph(seed: int, n: int, e: int) -> torch.Tensor:
    """``e`` directed edges between ``n`` nodes, uniformly drawn, no self-loops."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=g)
    dst = (src + torch.randint(1, n, (e,), generator=g)) % n  # no self-loops
    return torch.stack([src, dst])


def _rho(a, b) -> float:
    return float(spearmanr(a, b).statistic)


def correlations(archs: int, seeds: int, boot: int, hidden: int, scale: int = 1):
    """Rows of the correlation table (see the module docstring); the random graph has
    ``1/scale`` of Cora's nodes and edges (``--quick``: a tenth)."""
    from supernet.tabular import load_benchmark

    bench = load_benchmark("nas-bench-graph:cora")
    keys = sorted(bench.keys())
    options = {"hidden": hidden, "pre": 0, "post": 1}
    columns = {"params": [], "flops": [], "bench params": [], "synflow (random graph)": []}
    per_seed = {k: [] for k in columns}
    acc_all = []
    nodes, edges = CORA["nodes"] // scale, CORA["edges"] // scale
    x = torch.ones(nodes, CORA["features"])
    for seed in range(seeds):
        edge_index = _random_graph(seed, nodes, edges)
        values = {k: [] for k in columns}
        acc = []
        for graph in _draw(bench, keys, archs, seed, options):
            metrics = bench.query(graph)
            torch.manual_seed(seed)
            net = compile(graph)
            acc.append(metrics["test_accuracy"])
            values["params"].append(score("params", net, input_shape=[CORA["features"]]))
            values["flops"].append(score("flops", net, input_shape=[CORA["features"]]))
            values["bench params"].append(metrics["params"])
            values["synflow (random graph)"].append(
                score("synflow", net, ((x,), {"edge_index": edge_index}, None)))
        for k in columns:
            per_seed[k].append(_rho(values[k], acc))
            columns[k] += values[k]
        acc_all += acc
    rows = []
    for k in columns:
        _, lo, hi = spearman_ci(columns[k], acc_all, reps=boot, seed=0)
        rs = per_seed[k]
        rows.append({"proxy": k, "rho": statistics.mean(rs),
                     "std": statistics.stdev(rs) if len(rs) > 1 else 0.0, "lo": lo, "hi": hi,
                     "n": len(acc_all)})
    ours, theirs = np.array(columns["params"]), np.array(columns["bench params"])
    match = {"median_rel": float(np.median(np.abs(ours - theirs) / theirs)),
             "rho": _rho(ours, theirs)}
    return rows, len(bench), match


def _draw(bench, keys, archs, seed, options):
    """``archs`` graphs of table keys drawn uniformly (seeded) among those the space
    builds at ``options``."""
    from supernet.errors import GenotypeError

    order = list(keys)
    random.Random(seed).shuffle(order)
    found = 0
    for key in order:
        if found == archs:
            return
        try:
            graph = bench.graph(key, **options)
        except GenotypeError:  # a skip chain from the raw input: 1433 -> 256 features
            continue
        found += 1
        yield graph


def _nb201(seed: int, quick: bool):
    opts = {"C": 4, "N": 1} if quick else {"C": 16, "N": 5}
    graph = create_space("nasbench201", num_classes=10, **opts)
    torch.manual_seed(seed)
    net = compile(graph)
    space = choice_space(graph, net)
    space.apply(Editor(graph, net), space.sample(random.Random(seed)))
    return net


def proxy_seconds(seeds: int, quick: bool):
    """``{proxy: [seconds per network]}`` on sampled NAS-Bench-201 networks; the proxies
    are timed in turn on the same network and batch."""
    n, size = (8, 16) if quick else (64, 32)
    out = {name: [] for name in PROXIES.list()}
    for seed in range(seeds):
        net = _nb201(seed, quick)
        g = torch.Generator().manual_seed(seed)
        batch = ((torch.randn(n, 3, size, size, generator=g),), {},
                 torch.randint(0, 10, (n,), generator=g))
        for name in out:
            t = time.perf_counter()
            score(name, net, batch)
            out[name].append(time.perf_counter() - t)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--archs", type=int, default=200, help="architectures per seed")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--hidden", type=int, default=HIDDEN)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.archs, args.boot, args.seeds = min(args.archs, 4), min(args.boot, 50), min(
            args.seeds, 2)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join([COMMAND, *given])
    t0 = time.perf_counter()
    scale = 10 if args.quick else 1
    rows, size, match = correlations(args.archs, args.seeds, args.boot, args.hidden, scale)
    print(f"\nNAS-Bench-Graph, Cora: Spearman ρ with test accuracy, {args.archs} architectures "
          f"drawn uniformly from the table's {size} per seed, {args.seeds} seed(s); gnn space "
          f"at hidden {args.hidden}, no pre-processing and one post-processing layer; "
          f"synflow on a random graph of {CORA['nodes'] // scale} nodes and "
          f"{CORA['edges'] // scale} edges{' (quick)' if args.quick else ''}\n")
    print("| proxy | ρ (mean ± std over seeds) | 95% bootstrap interval (pooled) |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['proxy']} | {r['rho']:+.3f} ± {r['std']:.3f} | "
              f"[{r['lo']:+.3f}, {r['hi']:+.3f}] |")
    print(f"\nour params vs the benchmark's, same architectures: median relative difference "
          f"{100 * match['median_rel']:.2f}%, Spearman ρ {match['rho']:+.3f}")
    seconds = proxy_seconds(args.seeds, args.quick)
    shape = "C=4, N=1, batch 8 on 16x16 (quick)" if args.quick else "C=16, N=5, batch 64 on 32x32"
    print(f"\nSeconds per proxy on one sampled NAS-Bench-201 network ({shape}, one thread), "
          f"median over {args.seeds} network(s)\n")
    print("| proxy | seconds |")
    print("|---|---|")
    for name, ts in seconds.items():
        print(f"| {name} | {statistics.median(ts):.3f} |")
    totals = [sum(ts[i] for ts in seconds.values()) for i in range(args.seeds)]
    print(f"| **all {len(seconds)}** | **{statistics.median(totals):.2f}** |")
    print(f"\ncommand: {command}")
    print(f"load average: {tuple(round(v, 2) for v in os.getloadavg())}; "
          f"wall {time.perf_counter() - t0:.0f} s; torch threads {torch.get_num_threads()}")
    return {"correlations": rows, "seconds": seconds}


if __name__ == "__main__":
    sys.exit(main() and 0)
