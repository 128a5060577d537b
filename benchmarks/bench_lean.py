"""The memory-lean mode and path sampling, measured side by side.

(a) One first-order DARTS step (architecture step on a validation batch, then a weight
    step) of the compiled DARTS search network (``search_spaces`` ``darts``), in the normal
    mode and in the memory-lean mode (``memory: lean``: the candidates of every mixed edge
    recomputed in backward, :mod:`supernet.compiler.recompute`). Targets: lean/normal
    <= 0.25x peak memory at <= 1.4x time.
(b) Path sampling on NAS-Bench-201 (C=16, N=5): the weight step of GDAS and of SPOS on a
    sampled path against the training step of the standalone network of the same path
    (``supernet.compiler.standalone``, the same op modules, its input in the memory format
    the super-network runs in). Target: <= 1.02x time and memory. ``GDAS, h kept`` is the GDAS weight step with the straight-through product
    ``h_k o_k(x) + Σ h_j`` computed as in the architecture step (the arithmetic before the
    weight step held the architecture constant); the full GDAS step (arch + weights) is
    shown for scale.

Times: per seed, the candidates alternate within each repetition; the per-seed medians and
their ratios are averaged over seeds (mean ± std). Peak memory: one fresh process per
candidate and seed, alternating, as ``bench_search.py`` measures it (peak resident size
above the resident size after building). One torch thread.

Usage::

    PYTHONPATH=. python benchmarks/bench_lean.py             # C=16, 8 cells, batch 64, 32x32
    PYTHONPATH=. python benchmarks/bench_lean.py --quick     # a smoke run of seconds
    PYTHONPATH=. python benchmarks/bench_lean.py --only b --seeds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.bench_search import (  # noqa: E402
    compiled_search,
    make_data,
    median_times,
    status_kb,
    step_compiled,
    supernet_graph,
)
from supernet.compiler.recompute import use_memory_mode  # noqa: E402

PARTS = {
    "a": ("DARTS step, first order", "darts_normal", ["darts_lean"]),
    "b": ("NAS-Bench-201 weight step on a sampled path", "nb201_standalone",
          ["gdas_weights", "spos_weights", "gdas_weights_h", "gdas_step"]),
}
LABELS = {"darts_normal": "normal mode", "darts_lean": "memory-lean mode",
          "nb201_standalone": "standalone network of the path",
          "gdas_weights": "GDAS weight step", "spos_weights": "SPOS weight step",
          "gdas_weights_h": "GDAS weight step, h kept", "gdas_step": "GDAS step (arch + weights)"}
NO_MEMORY = ("gdas_step",)  # shown for scale, timed only


# ---------------------------------------------------------------------- candidates
def nb201_path(args, seed):
    """The NAS-Bench-201 super-network with GDAS attached, and the path GDAS samples
    after ``torch.manual_seed(seed)``: ``{gate key: candidate index}``."""
    from search_spaces import create_space
    from supernet import compile
    from supernet.search.relaxations import GumbelMax, use_relaxation

    g = create_space("nasbench201", C=args.nb_C, N=args.nb_N)
    net = compile(g)
    relax = GumbelMax()
    use_relaxation(net, relax)
    torch.manual_seed(seed)
    with torch.no_grad():
        decisions = relax(dict(net.arch.items()))
    return g, net, relax, {k: d.active[0][0] for k, d in decisions.items()}


def path_network(g, net, path):
    """The standalone network of ``path`` with the op modules of ``net`` (``g`` and
    ``net`` are discretized in place)."""
    from supernet.compiler.standalone import standalone
    from supernet.edits import Editor
    from supernet.search.choices.layer import ChoiceSpace

    g.meta["constraints"] = {}
    space = ChoiceSpace(g, net)
    choice = {key: e.ops[path[e.keys[0]]] for key, _, e in space.edges()}
    editor = Editor(g, net)
    for e in space.edits(choice):
        editor.apply(e)
    return standalone(g, net), choice


def build(kind, args, seed):
    """A step callable of candidate ``kind``, built after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    if kind.startswith("darts_"):
        batches = make_data(args.batch, args.size)
        g, _ = supernet_graph(args.C, args.layers)
        s = compiled_search(g, None, args.batch, args.size)
        use_memory_mode(s.module, "lean" if kind == "darts_lean" else "normal")
        return lambda: step_compiled(s, batches)
    (x, y), vb = make_data(args.nb_batch, args.size)
    g, net, relax, path = nb201_path(args, seed)
    if kind == "nb201_standalone":
        plain, _ = path_network(g, net, path)
        if net.memory_format == "auto":  # the format the super-network runs its inputs in
            x = x.contiguous(memory_format=torch.channels_last)
        opt = torch.optim.SGD(plain.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(plain(x), y).backward()
            nn.utils.clip_grad_norm_(list(plain.parameters()), 5.0)
            opt.step()

        return step
    if kind == "spos_weights":
        from supernet.search.relaxations import UniformPath

        spos = UniformPath()
        s = compiled_search(g, spos, args.nb_batch, args.size, arch=False, module=net)
        spos.fixed = {key: e.ops[path[e.keys[0]]] for key, _, e in spos.space.edges()}
        return lambda: s._weight_step((x,), {}, y)
    s = compiled_search(g, relax, args.nb_batch, args.size, module=net)

    def step():
        torch.manual_seed(seed)  # the same Gumbel noise: the path of the standalone network
        if kind == "gdas_weights":
            s._weight_step((x,), {}, y)
        elif kind == "gdas_weights_h":
            weight_step_keeping_h(s, x, y)
        else:
            step_compiled(s, ((x, y), vb))

    return step


def weight_step_keeping_h(s, x, y):
    """A GDAS weight step whose forward builds the straight-through product (the
    architecture parameters require a gradient), the rest as ``weight_step``."""
    from supernet.search.relaxations import set_phase

    m = s.module
    set_phase(m, "weights")
    loss = F.cross_entropy(m(x), y)
    s.w_opt.zero_grad(set_to_none=True)
    params = [p for grp in s.w_opt.param_groups for p in grp["params"]]
    torch.autograd.backward(loss, inputs=params)
    nn.utils.clip_grad_norm_(params, 5.0)
    s.w_opt.step()


# ---------------------------------------------------------------------- measuring
def worker(kind, seed, args) -> dict:
    step = build(kind, args, seed)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident size
    rest = status_kb("VmRSS")
    for _ in range(args.mem_steps):
        step()
    return {"kind": kind, "peak_mb": (status_kb("VmHWM") - rest) / 1024}


def memory(kinds, seed, args) -> dict[str, float]:
    """Peak memory of each kind for ``seed``: one fresh process each, alternating, median
    of ``mem_repeats``."""
    out = {k: [] for k in kinds}
    for _ in range(args.mem_repeats):
        for k in kinds:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", k, "--worker-seed",
                   str(seed), *args.passthrough]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            out[k].append(json.loads(res.stdout.strip().splitlines()[-1])["peak_mb"])
    return {k: statistics.median(v) for k, v in out.items()}


def timing(kinds, seed, args) -> dict[str, float]:
    """Median step time of each kind for ``seed``, the kinds alternating."""
    return median_times({k: build(k, args, seed) for k in kinds}, args.warmup, args.repeats)


def mean_std(values) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def part(key, args) -> list[str]:
    title, base, others = PARTS[key]
    kinds = [base, *others]
    t = {k: [] for k in kinds}
    m = {k: [] for k in kinds}
    for seed in range(args.seeds):
        for k, v in timing(kinds, seed, args).items():
            t[k].append(v)
        for k, v in memory([k for k in kinds if k not in NO_MEMORY], seed, args).items():
            m[k].append(v)
    rows = [f"\n### ({key}) {title}\n",
            "| candidate | time (ms) | time / base | peak memory (MB) | memory / base |",
            "|---|---|---|---|---|"]
    for k in kinds:
        ms = [v * 1e3 for v in t[k]]
        tr = [a / b for a, b in zip(t[k], t[base])]
        mem = f"{mean_std(m[k])}" if m[k] else "–"
        mr = mean_std([a / b for a, b in zip(m[k], m[base])]) if m[k] else "–"
        rows.append(f"| {LABELS[k]} | {mean_std(ms)} | {mean_std(tr)} | {mem} | {mr} |")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny networks, 1 repeat")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--nb-C", type=int, default=16, help="NAS-Bench-201 channels in (b)")
    p.add_argument("--nb-N", type=int, default=5, help="NAS-Bench-201 cells per stage in (b)")
    p.add_argument("--nb-batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--mem-repeats", type=int, default=1)
    p.add_argument("--mem-steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", default="ab", help="which parts to run, e.g. 'b'")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.C, args.layers, args.batch, args.size = 4, 3, 4, 8
        args.nb_C, args.nb_N, args.nb_batch = 4, 1, 4
        args.repeats, args.warmup, args.mem_steps = 1, 0, 1
        args.seeds = 1
    torch.set_num_threads(args.threads)
    args.passthrough = [
        "--C", str(args.C), "--layers", str(args.layers), "--batch", str(args.batch),
        "--size", str(args.size), "--nb-C", str(args.nb_C), "--nb-N", str(args.nb_N),
        "--nb-batch", str(args.nb_batch), "--mem-steps", str(args.mem_steps),
        "--threads", str(args.threads)]
    if args.worker:
        print(json.dumps(worker(args.worker, args.worker_seed, args)))
        return
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average "
          f"{load}; {args.seeds} seeds, {args.repeats} timed steps per candidate and seed, "
          f"{args.mem_repeats} memory process(es) of {args.mem_steps} steps per candidate "
          f"and seed")
    print(f"(a) DARTS C={args.C}, {args.layers} cells, batch {args.batch}, "
          f"{args.size}x{args.size}; (b) NAS-Bench-201 C={args.nb_C}, N={args.nb_N}, batch "
          f"{args.nb_batch}, {args.size}x{args.size}")
    for key in args.only:
        print("\n".join(part(key, args)))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at the end: {load}")


if __name__ == "__main__":
    main()
