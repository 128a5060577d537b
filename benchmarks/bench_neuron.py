"""Neuron-level benchmark: build, compile, forward+backward and synaptic edits.

Run from the repository root:

    PYTHONPATH=. python benchmarks/bench_neuron.py            # full run (a few minutes)
    PYTHONPATH=. python benchmarks/bench_neuron.py --quick    # smoke run

Prints markdown tables of medians. Everything compared is measured side by side in this
one run, alternating the candidates within each repetition, so that load from other
processes falls on both. The baseline is the usual way to train a sparse MLP in PyTorch: a
dense ``nn.Linear`` stack whose weights are multiplied by a fixed 0/1 mask every forward.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from supernet import compile
from supernet.edits import Editor
from supernet.edits.units import AddConnections, RemoveConnections
from supernet.units import connection_ids, mlp
from supernet.units.masks import entry_keys, find, sample_keys


class MaskedMLP(nn.Module):
    """Dense ``nn.Linear`` layers times fixed masks (the graph's), ReLU between them."""

    def __init__(self, graph, names):
        super().__init__()
        self.layers = nn.ModuleList()
        self.masks = []
        for u, v in zip(names, names[1:]):
            m = graph.edge(u, v)["mask"]
            lin = nn.Linear(m.shape[1], m.shape[0])
            mask = torch.from_numpy(m.toarray()).float()
            with torch.no_grad():
                lin.weight.mul_(mask)
            self.layers.append(lin)
            self.masks.append(mask)

    def forward(self, x):
        for i, (lin, m) in enumerate(zip(self.layers, self.masks)):
            x = F.linear(x, lin.weight * m, lin.bias)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def medians(fns: dict, repeats: int) -> dict:
    """Median seconds of each callable, alternating their order every repetition."""
    for f in fns.values():
        f()  # warm-up
    times = {k: [] for k in fns}
    keys = list(fns)
    for r in range(repeats):
        for k in (keys if r % 2 == 0 else keys[::-1]):
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def once(fn, repeats: int = 1):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def step(module, x):
    def run():
        module.zero_grad(set_to_none=True)
        module(x).square().mean().backward()
    return run


def names_of(sizes):
    return ["x"] + [f"h{i}" for i in range(1, len(sizes) - 1)] + ["y"]


def edit_cycle(g, net, opt, edge, count, rng):
    """Time removing ``count`` random synapses of ``edge`` and adding ``count`` missing ones."""
    u, v = edge
    m = g.edge(u, v)["mask"]
    drop = np.sort(rng.choice(m.nnz, size=count, replace=False))
    dst, src, _ = connection_ids(g, u, v, drop)
    have = entry_keys(m)
    cand = sample_keys(rng, m.shape[0] * m.shape[1], min(m.shape[0] * m.shape[1],
                                                            3 * count + m.nnz // 4))
    missing = rng.permutation(cand[find(have, cand) < 0])[:count]
    rows, cols = missing // m.shape[1], missing % m.shape[1]
    add_dst = g.node(v)["units"][rows]
    add_src = g.node(u)["units"][cols]
    ed = Editor(g, net, opt)
    t_remove = once(lambda: ed.apply(RemoveConnections(u, v, dst, src)))
    t_add = once(lambda: ed.apply(AddConnections(u, v, add_dst, add_src, init="zero")))
    return t_remove, t_add, len(dst), len(add_dst)


def section_mlp(args):
    sizes, density, batch = [784, 1000, 1000, 10], 0.1, 256
    names = names_of(sizes)
    reps = 3 if args.quick else 7
    t_build = once(lambda: mlp(sizes, density=density, seed=0), reps)
    g = mlp(sizes, density=density, seed=0)
    t_compile = once(lambda: compile(g, seed=0), reps)
    net = compile(g, seed=0)
    base = MaskedMLP(g, names)
    x = torch.randn(batch, sizes[0])
    t = medians({"unit": step(net, x), "base": step(base, x)}, 10 if args.quick else 30)
    synapses = sum(g.edge(u, v)["mask"].nnz for u, v in zip(names, names[1:]))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    step(net, x)()
    opt.step()
    rng = np.random.default_rng(0)
    removes, adds = [], []
    for _ in range(3 if args.quick else 5):
        # 100k synaptic edits per cycle: 50k removals and 50k additions on h1->h2
        r, a, nr, na = edit_cycle(g, net, opt, ("h1", "h2"), 50_000, rng)
        removes.append(r)
        adds.append(a)
    small = []  # the fixed cost of one record: 20 records of 10 synapses each
    for _ in range(2):
        for _ in range(10):
            r, a, _, _ = edit_cycle(g, net, opt, ("h1", "h2"), 10, rng)
            small += [r, a]
    print("\n### MLP 784-1000-1000-10, 90% synaptic sparsity, batch 256\n")
    print(f"synapses: {synapses:,}\n")
    print("| measure | median | ratio to baseline |")
    print("|---|---|---|")
    print(f"| build graph (masks included) | {t_build * 1e3:.1f} ms | |")
    print(f"| compile | {t_compile * 1e3:.1f} ms | |")
    print(f"| forward+backward, unit module | {t['unit'] * 1e3:.2f} ms | "
          f"{t['unit'] / t['base']:.2f}x |")
    print(f"| forward+backward, dense nn.Linear x mask | {t['base'] * 1e3:.2f} ms | 1.00x |")
    r, a = statistics.median(removes), statistics.median(adds)
    print(f"| remove 50k synapses (one record, module + SGD state) | {r * 1e3:.1f} ms | |")
    print(f"| add 50k synapses (one record, zero init) | {a * 1e3:.1f} ms | |")
    print(f"| 100k synaptic edits (remove + add) | {(r + a) * 1e3:.1f} ms | |")
    print(f"| one record of 10 synapses (fixed cost per record) | "
          f"{statistics.median(small) * 1e3:.1f} ms | |")


def section_density(args):
    sizes, batch = [784, 1000, 1000, 10], 256
    names = names_of(sizes)
    densities = [0.01, 0.1, 0.3, 0.5, 1.0] if args.quick else \
        [0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9, 1.0]
    x = torch.randn(batch, sizes[0])
    print("\n### Forward+backward by density (784-1000-1000-10, batch 256)\n")
    print("| density | auto (kernel) | sparse kernel | masked dense kernel | baseline "
          "| auto / baseline | sparse / masked dense |")
    print("|---|---|---|---|---|---|---|")
    for d in densities:
        g = mlp(sizes, density=d, seed=0)
        auto = compile(g, seed=0)
        kinds = {type(auto.block(u, v)).__name__[:-5].lower()
                 for u, v in zip(names, names[1:])}
        fns = {"auto": step(auto, x), "sparse": step(compile(g, seed=0, kernel="sparse"), x),
               "dense": step(compile(g, seed=0, kernel="dense"), x),
               "base": step(MaskedMLP(g, names), x)}
        t = medians(fns, 6 if args.quick else 15)
        print(f"| {d:.2f} | {t['auto'] * 1e3:.2f} ms ({'+'.join(sorted(kinds))}) | "
              f"{t['sparse'] * 1e3:.2f} ms | {t['dense'] * 1e3:.2f} ms | "
              f"{t['base'] * 1e3:.2f} ms | {t['auto'] / t['base']:.2f}x | "
              f"{t['sparse'] / t['dense']:.2f}x |")


def section_series(args):
    batch, density = 256, 0.1
    targets = [100_000, 1_000_000] if args.quick else [100_000, 1_000_000, 10_000_000]
    print("\n### Series in the number of synapses (MLP n-n-n at 10% density, batch 256)\n")
    print("| synapses | n | build | compile | build+compile | fwd+bwd unit | fwd+bwd baseline "
          "| remove edits | add edits |")
    print("|---|---|---|---|---|---|---|---|---|")
    for target in targets:
        n = int(round((target / (2 * density)) ** 0.5))
        sizes = [n, n, n]
        t_build = once(lambda: mlp(sizes, density=density, seed=0))
        g = mlp(sizes, density=density, seed=0)
        t_compile = once(lambda g=g: compile(g, seed=0))
        net = compile(g, seed=0)
        x = torch.randn(batch, n)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        step(net, x)()
        opt.step()
        count = min(1_000_000, target // 10)
        rng, cycles = np.random.default_rng(1), []
        for _ in range(3):  # medians of removal and of addition
            cycles.append(edit_cycle(g, net, opt, ("x", "h1"), count, rng))
        r, a = (statistics.median(c[i] for c in cycles) for i in (0, 1))
        nr, na = cycles[0][2], cycles[0][3]
        fns = {"unit": step(net, x), "base": step(MaskedMLP(g, ["x", "h1", "y"]), x)}
        t = medians(fns, 3)
        base = f"{t['base'] * 1e3:.0f} ms"
        synapses = sum(g.edge(u, v)["mask"].nnz for u, v in [("x", "h1"), ("h1", "y")])
        print(f"| {synapses:,} | {n} | {t_build:.2f} s | {t_compile:.2f} s | "
              f"{t_build + t_compile:.2f} s | {t['unit'] * 1e3:.0f} ms | {base} | "
              f"{nr:,} in {r:.2f} s | {na:,} in {a:.2f} s |")
        del net, g, fns


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller series")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores ({cpu}), torch {torch.__version__}, "
          f"torch.get_num_threads() = {torch.get_num_threads()}, load average {load}")
    torch.manual_seed(0)
    section_mlp(args)
    section_density(args)
    section_series(args)


if __name__ == "__main__":
    main()
