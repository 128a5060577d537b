"""Time of one training step (forward + backward) of the compiled DARTS search network
against the hand-written reference super-network of the same shape (tests/darts_oracle.py),
measured alternately in one process; prints medians and their ratio.

    PYTHONPATH=. python benchmarks/darts_search_step.py [--threads 2] [--repeats 15]

Cases: "darts" (C=16, 8 cells, 32x32, batch 16) and "darts1d" at its defaults (C=8, 4 cells,
length 40, batch 64), the size meant for a search of a minute or two on MNIST-1D.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import supernet  # noqa: E402
from darts_oracle import SearchNetwork  # noqa: E402
from search_spaces import create_space  # noqa: E402


def step(net, x, y):
    t = time.perf_counter()
    F.cross_entropy(net(x), y).backward()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = [("darts", dict(), SearchNetwork(), (16, 3, 32, 32)),
             ("darts1d", dict(), SearchNetwork(C=8, layers=4, in_channels=1, dim=1),
              (64, 1, 40))]
    for space, kw, ref, shape in cases:
        ours = supernet.compile(create_space(space, **kw))
        x, y = torch.randn(*shape), torch.randint(0, 10, (shape[0],))
        for _ in range(2):  # warm-up
            step(ours, x, y), step(ref, x, y)
        a, b = [], []
        for _ in range(args.repeats):
            a.append(step(ours, x, y))
            b.append(step(ref, x, y))
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{space:8s} batch {shape[0]:3d}: compiled {ma * 1e3:7.1f} ms, hand-written "
              f"{mb * 1e3:7.1f} ms, ratio {ma / mb:.2f} (threads={args.threads})")
        if space == "darts1d":  # MNIST-1D: 4000 training signals, half for the architecture
            steps = 2 * -(-2000 // shape[0])
            print(f"{'':8s} first-order DARTS epoch on MNIST-1D ~ {steps} steps x "
                  f"{ma:.2f} s = {steps * ma:.0f} s")


if __name__ == "__main__":
    main()
