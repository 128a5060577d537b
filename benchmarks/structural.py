"""Every structural-learning table in one command, each section a benchmark of its own.

Run from the repository root (one torch thread; the sections run one after the other and
each prints its markdown tables, with medians or mean ± std over the seeds):

    PYTHONPATH=. python benchmarks/structural.py              # every section, 3 seeds
    PYTHONPATH=. python benchmarks/structural.py --quick      # a smoke run of each
    PYTHONPATH=. python benchmarks/structural.py --only neuron channel

Sections (the script of each, run alone, has more options; ``--help``):

* ``neuron``      -- pruning and sparse training of the 40-100-100-10 MLP on MNIST-1D and
  digits (``structural_neuron.py``)
* ``growth``      -- neuron creation by splitting, Firefly and GradMax (``structural_growth.py``)
* ``growprune``   -- Net2DeeperNet, NORTH and NeST (``structural_growprune.py``)
* ``channel``     -- channel pruning against Torch-Pruning, latency, Net2Wider
  (``structural_channel.py``)
* ``budgets``     -- unit-level searches at size targets (``structural_budgets.py``)
* ``progressive`` -- P-DARTS, SGAS, DARTS-PT, PC-DARTS, ProxylessNAS at the unit levels
  (``structural_progressive.py``)
* ``crosslevel``  -- one search of ops and widths against the two levels one after the other
  (``structural_crosslevel.py``)
* ``lowering``    -- found DARTS, NAS-Bench-201 and MobileNetV2 networks lowered, channel-pruned
  and fine-tuned (``bench_lowering.py``)

``docs/results.md`` carries the tables of a full run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

#: section -> (script, extra arguments of each call)
SECTIONS = {
    "neuron": ("structural_neuron.py", [["--data", "mnist1d"], ["--data", "digits"]]),
    "growth": ("structural_growth.py", [["--data", "mnist1d"], ["--data", "digits"]]),
    "growprune": ("structural_growprune.py", [["--data", "mnist1d"], ["--data", "digits"]]),
    "channel": ("structural_channel.py", [[]]),
    "budgets": ("structural_budgets.py", [[]]),
    "progressive": ("structural_progressive.py", [[]]),
    "crosslevel": ("structural_crosslevel.py", [[]]),
    "lowering": ("bench_lowering.py", [[]]),
}


def _load(script: str):
    spec = importlib.util.spec_from_file_location(script[:-3], os.path.join(HERE, script))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds per figure (default 3)")
    ap.add_argument("--quick", action="store_true", help="a smoke run of every section")
    ap.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="these sections only")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()}")
    for name in args.only or SECTIONS:
        script, calls = SECTIONS[name]
        module = _load(script)
        for extra in calls:
            call = [*extra, "--seeds", str(args.seeds), *(["--quick"] if args.quick else [])]
            print(f"\n## {name}: {script} {' '.join(call)}\n", flush=True)
            t0 = time.perf_counter()
            module.main(call)
            print(f"\n({name}: {time.perf_counter() - t0:.0f} s; load average "
                  f"{os.getloadavg()})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
