"""Lowering benchmark: every op of the bundled spaces against its channel- and neuron-level
form, and found networks channel-pruned after lowering.

Run from the repository root:

    PYTHONPATH=. python benchmarks/bench_lowering.py            # full run
    PYTHONPATH=. python benchmarks/bench_lowering.py --quick    # smoke run (seconds)

Two markdown tables, everything measured in this run:

1. **Ops.** For each op (in the forms the bundled networks use), the largest ``|difference|``
   between the op and its lowering over ``--seeds`` random draws of weights, batch-norm
   statistics and inputs (:func:`supernet.lowering.lowering_error`): channel level in eval
   and training mode, neuron level in eval mode.
2. **Pruning.** A DARTS (DARTS_V2 genotype), a NAS-Bench-201 and a MobileNetV2 network are
   trained on three-channel copies of the 8x8 digits, lowered to the channel level and half
   of their channel groups pruned (``prune(..., what="units")``, global) by magnitude,
   Taylor or random scores, then fine-tuned. Baselines: the unpruned network (trained for
   the same total epochs), and the magnitude-pruned structure trained from scratch for the
   same total epochs. Test accuracy mean ± std over ``--seeds``, with the channels and conv
   weights kept.
"""

from __future__ import annotations

import argparse
import os
import statistics

import numpy as np
import torch

import supernet
from search_spaces import mobilenet, nasbench201
from search_spaces.darts import network_graph
from supernet.data import load_dataset
from supernet.edits import Editor
from supernet.lowering import lower, lowering_error
from supernet.search import scores
from supernet.search.discretize.units import prune
from supernet.train.retrain import accuracy, train_module

#: ``op: [(C_in, C_out, args, spatial shape), ...]``.
CASES = {
    "sep_conv_3x3": [(4, 4, {}, (8, 8)), (4, 8, {"stride": 2}, (7, 7))],
    "sep_conv_5x5": [(4, 4, {}, (8, 8))],
    "sep_conv_7x7": [(4, 4, {"stride": 2}, (8, 8))],
    "dil_conv_3x3": [(4, 4, {}, (8, 8)), (4, 8, {"stride": 2}, (7, 7))],
    "dil_conv_5x5": [(4, 4, {}, (8, 8))],
    "conv_7x1_1x7": [(4, 4, {"stride": 2}, (8, 8))],
    "skip_connect": [(4, 4, {}, (8, 8)), (4, 8, {"stride": 2}, (7, 7))],
    "factorized_reduce": [(4, 8, {}, (8, 8)), (4, 8, {}, (7, 7))],
    "preprocess": [(6, 4, {}, (8, 8)), (6, 4, {"stride": 2}, (8, 8))],
    "relu_conv_bn": [(4, 6, {"kernel_size": 3}, (8, 8))],
    "stem_conv_bn": [(3, 8, {}, (8, 8))],
    "max_pool_3x3": [(4, 4, {"stride": 2}, (8, 8))],
    "avg_pool_3x3": [(4, 4, {}, (8, 8)), (4, 4, {"pool_bn": True}, (8, 8))],
    "none": [(4, 4, {}, (8, 8))],
    "identity": [(4, 4, {}, (8, 8))],
    "nor_conv_1x1": [(4, 4, {}, (8, 8))],
    "nor_conv_3x3": [(4, 4, {}, (8, 8)), (4, 4, {"affine": False}, (8, 8))],
    "nb201_skip_connect": [(4, 4, {}, (8, 8)), (4, 8, {"stride": 2}, (7, 7))],
    "nb201_avg_pool_3x3": [(4, 4, {}, (8, 8)), (4, 8, {}, (8, 8))],
    "nb201_downsample": [(4, 8, {"stride": 2}, (8, 8))],
    "mbconv_3x3_e1": [(4, 4, {}, (8, 8))],
    "mbconv_5x5_e6": [(4, 8, {"stride": 2}, (8, 8))],
    "mbconv_7x7_e3": [(4, 4, {}, (8, 8))],
    "conv_bn_relu6": [(3, 8, {"stride": 2}, (8, 8))],
    "global_avg_pool": [(4, 4, {}, (8, 8))],
    "adaptive_avg_pool": [(4, 4, {}, (1, 1))],
    "avg_pool": [(4, 4, {"kernel_size": 2}, (8, 8))],
    "linear": [(8, 4, {}, ())],
    "classifier": [(8, 4, {}, ())],
}

#: Ops of the bundled spaces without a unit-level form, and why.
NO_FORM = {
    "aux_head": "train-only auxiliary head: build the network without it",
    "aux_head_imagenet": "train-only auxiliary head",
    "dropout": "no unit-level dropout",
}


def op_table(seeds: int) -> list[str]:
    rows = ["| op | args | channel | neuron | max \\|diff\\| channel, eval | channel, train | "
            "neuron, eval |", "|---|---|---|---|---|---|---|"]
    for op, cases in CASES.items():
        for C_in, C_out, args, shape in cases:
            errs = [[lowering_error(op, C_in, C_out, args, shape, to, train, seed)
                     for seed in range(seeds)]
                    for to, train in (("channel", False), ("channel", True), ("neuron", False))]
            what = f"{C_in}->{C_out} {args or ''} {'x'.join(map(str, shape)) or 'vector'}"
            rows.append(f"| `{op}` | {what} | yes | yes | "
                        + " | ".join(f"{max(e):.1e}" for e in errs) + " |")
    for op, why in NO_FORM.items():
        rows.append(f"| `{op}` | | no | no ({why}) | | | |")
    return rows


def networks() -> dict:
    arch = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
            "+|skip_connect~0|none~1|nor_conv_3x3~2|")
    text = "mbconv_3x3_e1,mbconv_3x3_e6,mbconv_5x5_e6,mbconv_3x3_e3,mbconv_5x5_e3"
    return {
        "DARTS_V2 (C=8, 3 cells)": lambda: network_graph("DARTS_V2", C=8, layers=3),
        "NAS-Bench-201 (C=8, N=1)": lambda: nasbench201.decode(arch, C=8, N=1),
        "MobileNetV2 (x0.5, 5 blocks)": lambda: mobilenet.decode(
            text, width_mult=0.5, n_cell_stages=(2, 1, 1, 0, 0, 0), num_classes=10,
            last_channel=64, input_size=8),
    }


def _size(graph, module):
    nodes = [n for n, d in graph.nx.nodes(data=True) if d["kind"] == "units"]
    convs = [k for k in graph.nx.edges if graph.edge(*k)["kind"] == "conv"]
    return (sum(len(graph.node(n)["units"]) for n in nodes),
            sum(module.block(*k).weight.numel() for k in convs))


def prune_table(seeds: int, epochs: int, tune: int, n_train: int | None) -> list[str]:
    d = load_dataset("digits")
    three = lambda t: (t[0].expand(-1, 3, -1, -1).contiguous(), t[1])  # noqa: E731
    train, test = three(d.train), three(d.test)
    if n_train:
        train = (train[0][:n_train], train[1][:n_train])
    fit = dict(batch_size=64, lr=0.05, device="cpu")
    rows = ["| network | variant | channels | conv weights | test accuracy |",
            "|---|---|---|---|---|"]
    for name, build in networks().items():
        res: dict[str, list] = {}
        for seed in range(seeds):
            torch.manual_seed(seed)
            graph = build()
            net = supernet.compile(graph)
            train_module(net, train, epochs=epochs, seed=seed, **fit)
            batch = (train[0][:256], train[1][:256])
            for kind in ("magnitude", "taylor", "random"):
                low = lower(graph, "channel", net.eval())
                g, m = low.graph, low.module
                s = scores.magnitude(m, what="units")
                if kind == "taylor":
                    s = scores.taylor(m, batch)
                elif kind == "random":
                    rng = np.random.default_rng(seed)
                    s = {k: rng.random(len(v)) for k, v in s.items()}
                ed = Editor(g, m)
                for edit in prune(g, s, 0.5, what="units"):
                    ed.apply(edit)
                small = supernet.compile(g)
                small.load_state_dict(m.state_dict())
                res.setdefault(f"pruned 50% of groups ({kind}), fine-tuned", []).append(
                    (*_size(g, small), _more(small, train, test, tune, seed, fit)))
                if kind == "magnitude":
                    scratch = supernet.compile(g, seed=seed + 100)
                    train_module(scratch, train, epochs=epochs + tune, seed=seed, **fit)
                    res.setdefault("magnitude-pruned structure, from scratch", []).append(
                        (*_size(g, scratch), accuracy(scratch, test)))
            low = lower(graph, "channel", net.eval())  # last: training it more changes it
            res.setdefault("unpruned, trained for the same epochs", []).append(
                (*_size(low.graph, low.module), _more(net, train, test, tune, seed, fit)))
        for variant, vals in res.items():
            ch, w, acc = zip(*vals)
            rows.append(f"| {name} | {variant} | {statistics.median(ch):.0f} | "
                        f"{statistics.median(w):.0f} | {_pm(acc)} |")
    return rows


def _more(module, train, test, tune, seed, fit):
    """Test accuracy after ``tune`` more epochs."""
    train_module(module, train, epochs=tune, seed=seed + 1, **fit)
    return accuracy(module, test)


def _pm(values) -> str:
    values = [100 * v for v in values]
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=4, help="training before pruning")
    p.add_argument("--tune", type=int, default=2, help="fine-tuning epochs")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    seeds, epochs, tune, n = a.seeds, a.epochs, a.tune, None
    if a.quick:
        seeds, epochs, tune, n = 1, 1, 1, 128
    print(f"load average: {os.getloadavg()}, torch {torch.__version__}, seeds {seeds}\n")
    print("\n".join(op_table(seeds)))
    print()
    print(f"digits (3-channel copies), {epochs} epochs before pruning, {tune} after\n")
    print("\n".join(prune_table(seeds, epochs, tune, n)))
    print(f"\nload average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
