"""The device part of ``benchmarks/gpu_check.sh``: the lean mode's equality and the DARTS
step in both memory modes, on one device.

1. **Equality on the device**: one first-order DARTS step (architecture, then weights) of a
   small DARTS search network in the normal and in the memory-lean mode from the same
   initialization and seed: the losses, the gradients of the weights and architecture
   parameters, and the batch-norm buffers must agree (to float rounding on a GPU, whose
   kernels may sum in another order; ``num_batches_tracked`` exactly). Exits non-zero
   otherwise.
2. **The DARTS step** (``search_spaces`` ``darts``, C=16, 8 cells, batch 64, 32x32, first
   order): the two modes alternate within each repetition; times by CUDA events on a GPU
   (``time.perf_counter`` on a CPU), peak memory by ``torch.cuda.max_memory_allocated``
   (reset before each step; not measured on a CPU: ``benchmarks/bench_lean.py`` measures it
   there, in separate processes). Prints a markdown table with the card's name.

Usage::

    PYTHONPATH=. python benchmarks/gpu_check.py                 # cuda, the full table
    PYTHONPATH=. python benchmarks/gpu_check.py --device cpu --quick   # a smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.bench_search import compiled_search, make_data, step_compiled  # noqa: E402
from supernet.compiler.recompute import use_memory_mode  # noqa: E402

MODES = ("normal", "lean")


def search(mode, args, device, C, layers, batch):
    """A DARTS search on ``device`` in memory ``mode``, from seed 0, and its two batches."""
    from search_spaces import create_space

    torch.manual_seed(0)
    g = create_space("darts", C=C, layers=layers)
    s = compiled_search(g, None, batch, args.size)
    s.module.to(device)
    s.device = torch.device(device)
    use_memory_mode(s.module, mode)
    batches = [tuple(t.to(device) for t in b) for b in make_data(batch, args.size)]
    return s, batches


def check_equal(args, device) -> list[str]:
    """What differs between one step in each mode (empty: nothing)."""
    nets = []
    for mode in MODES:
        s, batches = search(mode, args, device, 4, 5, 8)
        s.module.share_prefixes = False  # the arithmetic the lean mode recomputes
        torch.manual_seed(1)
        step_compiled(s, batches)
        nets.append(s.module)
    normal, lean = nets
    bad = []
    for (n, p), q in zip(normal.named_parameters(), lean.parameters()):
        if not torch.allclose(p, q, rtol=1e-4, atol=1e-5):
            bad.append(f"parameter {n}: max |difference| {float((p - q).abs().max()):.3g}")
    for (n, b), c in zip(normal.named_buffers(), lean.buffers()):
        same = torch.equal(b, c) if not b.is_floating_point() else torch.allclose(
            b, c, rtol=1e-4, atol=1e-5)
        if not same:
            bad.append(f"buffer {n}: {b.flatten()[:3].tolist()} vs {c.flatten()[:3].tolist()}")
    return bad


def measure(args, device) -> dict:
    cuda = torch.device(device).type == "cuda"
    steps = {m: search(m, args, device, args.C, args.layers, args.batch) for m in MODES}
    times = {m: [] for m in MODES}
    peaks = {m: [] for m in MODES}
    for m, (s, b) in steps.items():
        for _ in range(args.warmup):
            step_compiled(s, b)
    for _ in range(args.repeats):
        for m, (s, b) in steps.items():
            if cuda:
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(
                    enable_timing=True)
                base = torch.cuda.memory_allocated(device)
                start.record()
                step_compiled(s, b)
                end.record()
                torch.cuda.synchronize(device)
                times[m].append(start.elapsed_time(end) / 1e3)
                peaks[m].append((torch.cuda.max_memory_allocated(device) - base) / 2**20)
            else:
                t = time.perf_counter()
                step_compiled(s, b)
                times[m].append(time.perf_counter() - t)
    return {"time": {m: statistics.median(v) for m, v in times.items()},
            "peak": {m: statistics.median(v) for m, v in peaks.items()} if cuda else None}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    p.add_argument("--quick", action="store_true", help="a smoke run: a tiny network")
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args(argv)
    if args.quick:
        args.C, args.layers, args.batch, args.size, args.repeats, args.warmup = 4, 3, 4, 8, 1, 0
    device = args.device
    if torch.device(device).type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {device}: torch sees no GPU (torch "
                             f"{torch.__version__}); use --device cpu")
        torch.backends.cudnn.benchmark = False
        name = torch.cuda.get_device_name(device)
    else:
        torch.set_num_threads(1)
        name = "CPU, 1 thread"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"device: {name}; torch {torch.__version__}; load average {load}")
    bad = check_equal(args, device)
    print(f"lean = normal after one DARTS step on {device}: "
          f"{'yes' if not bad else 'NO'}")
    for line in bad[:10]:
        print("  " + line)
    r = measure(args, device)
    t, m = r["time"], r["peak"]
    print(f"\nDARTS step, first order, C={args.C}, {args.layers} cells, batch {args.batch}, "
          f"{args.size}x{args.size}, {args.repeats} alternating repetitions (medians), {name}\n")
    print("| mode | time (ms) | time / normal | peak memory (MB) | memory / normal |")
    print("|---|---|---|---|---|")
    for mode in MODES:
        mem = f"{m[mode]:.1f} | {m[mode] / m['normal']:.3f}" if m else "– | –"
        print(f"| {mode} | {t[mode] * 1e3:.1f} | {t[mode] / t['normal']:.3f} | {mem} |")
    print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
