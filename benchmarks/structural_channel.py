"""Channel pruning and channel growth on a channel-level ResNet of 8x8 digits, side by side
with Torch-Pruning, at an equal training budget.

Run from the repository root (one thread per process; latency pinned to one core):

    PYTHONPATH=. python benchmarks/structural_channel.py --jobs 3    # ~10 min on 2 idle cores
    PYTHONPATH=. python benchmarks/structural_channel.py --quick                  # seconds
    PYTHONPATH=. python benchmarks/structural_channel.py --seeds 5 --high --jobs 5

The network is ``channel_cnn`` (search_spaces/channel_cnn.py) on scikit-learn's digits
(``load_dataset("digits")``: 1150 training, 287 validation, 360 test images). Every network
gets the same number of training epochs over the training split, ``pre + ft`` (10 + 5):

* **unpruned**: the full network, ``pre + ft`` epochs.
* **pruned** (criterion x sparsity): ``pre`` epochs of the full network, the channels of
  lowest score removed by :func:`supernet.search.discretize.units.prune` through an
  :class:`~supernet.edits.Editor` (the compiled tensors shrink), ``ft`` epochs of
  fine-tuning. Criteria: random scores (the random-structure baseline), the L1 norm of a
  filter (Li et al., ICLR 2017; ``scores.magnitude(net, what="units")``), the first-order
  Taylor criterion (Molchanov et al., ICLR 2017; ``scores.taylor``, averaged over the
  training batches), network slimming (Liu et al., ICCV 2017: the ``pre`` epochs with
  ``λ Σ |γ|`` added to the loss, then ``scores.bn_scale``) and a DARTS search of keep/drop
  channel gates (``pre`` search epochs whose architecture steps read the validation split,
  then the channels of lowest keep probability pruned, the gates taken off).
  ``scope="layer"``: every layer (and every residual stream, as one dependency group)
  loses the same fraction, so all criteria give the same architecture and the comparison
  is of the criteria alone.
* **small dense**: the pruned architecture trained from scratch for ``pre + ft`` epochs.
* **Torch-Pruning**: the same pre-trained network exported as torch layers
  (:func:`supernet.compiler.standalone.torch_layers`), pruned by DepGraph with L1
  magnitude importance (``tp.importance.MagnitudeImportance(p=1)``) at the same per-layer
  ratio (so to the same widths and MACs, checked), fine-tuned by the same loop.
* **growth** (second table): the half-width network trained directly, the full network
  trained directly, and Net2WiderNet (Chen et al., ICLR 2016): the half-width network for
  half the epochs, every channel split in two (``AddUnits(init="split")``, so the
  function is kept; a little noise breaks the symmetry), then the other half.

Training: SGD, momentum 0.9, weight decay 3e-4, batch 64, learning rate 0.05 cosine-annealed
to 0 within each training call (``supernet.train.train_module``); seeds change the weights
and the data order. Latency is measured on the deployed form: the torch layers with batch
norm folded into the convolutions (``torch.fx.experimental.optimization.fuse``), traced by
TorchScript and frozen (``torch.jit.freeze``), in eval mode under ``torch.inference_mode``, one thread; candidates
alternate within each repetition and the tables give medians and the ratio to the
unpruned network measured side by side. The last table runs one network in four forms:
the compiled unit module, its torch layers, with batch norm folded, and that traced by
TorchScript and frozen (the deployed form of the first table).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import numpy as np
import torch
import torch.nn as nn

import supernet
from search_spaces import create_space, encode
from supernet.compiler.standalone import torch_layers
from supernet.cost.units import keep_probabilities
from supernet.data import load_dataset
from supernet.edits import Editor
from supernet.edits.units import AddUnits, UngateUnits
from supernet.search import BilevelSearch, scores
from supernet.search.discretize.units import prune
from supernet.train import slimming_loss, train_module
from supernet.train.retrain import accuracy
from supernet.units.deps import Ties

FULL = {"widths": (16, 32, 64), "depths": (2, 2, 2), "pre": 10, "ft": 5, "seeds": 3,
        "reps": 15, "lam": 1e-3, "noise": 0.01}
QUICK = {"widths": (8, 16), "depths": (1, 1), "pre": 2, "ft": 1, "seeds": 1, "reps": 3,
         "lam": 1e-3, "noise": 0.01}
#: Sparsity -> the methods run at it: 50% of the channels (a quarter of the MACs) and 5/16
#: of them (about half the MACs, for latency at half the FLOPs); ``--high`` adds 7/8.
ALL = ("random", "L1 magnitude", "Taylor", "slimming", "small dense", "Torch-Pruning")
SPARSITIES = {0.5: ALL + ("gated search",), 0.3125: ("L1 magnitude", "small dense",
                                                     "Torch-Pruning")}
HIGH = {0.875: ALL}
LR, BATCH = 0.05, 64


class Plain(nn.Module):
    """A torch network (``net``) trained by the same loop as the compiled ones."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def space(widths, depths, gated=()):
    return create_space("channel_cnn", widths=tuple(widths), depths=depths, in_channels=1,
                        num_classes=10, input_size=8, gated=gated)


def train(net, data, epochs, seed, loss_fn=None):
    train_module(net, data.train, epochs=epochs, batch_size=BATCH, lr=LR, seed=seed,
                 device="cpu", loss_fn=loss_fn)
    return net


def fresh(widths, depths, seed):
    g = space(widths, depths)
    return supernet.compile(g, seed=seed)


def taylor_scores(net, data):
    """Molchanov et al.'s criterion averaged over the training set in batches (eval mode,
    so the batch-norm statistics stay)."""
    net.eval()
    x, y = data.train
    total = {}
    for i in range(0, len(y), 128):
        for n, s in scores.taylor(net, (x[i:i + 128], y[i:i + 128])).items():
            total[n] = total.get(n, 0) + s
    net.train()
    return total


def random_scores(net, seed):
    rng = np.random.default_rng(seed)
    g = net.graph
    return {n: rng.random(len(g.node(n)["units"])) for n in g.nx.nodes
            if g.node(n)["kind"] == "units"}


def per_stream(graph, unit_scores):
    """The scores with each residual stream under one node: the sum, channel by channel
    (by dependency group), of its members' scores, so that the layer scope takes a
    stream's fraction once (``prune`` applies it per scored node, and a stream scored at
    several nodes would lose that fraction once per node)."""
    ties = Ties(graph)
    out = {n: np.asarray(v, np.float64) for n, v in unit_scores.items()}

    def labels(n):
        return ties.labels[ties.offsets[n] + np.arange(len(graph.node(n)["units"]))]

    for nodes in graph.meta["streams"].values():
        scored = [n for n in nodes if n in out]
        if len(scored) < 2:
            continue
        rep = scored[0]
        pos = {lab: i for i, lab in enumerate(labels(rep).tolist())}
        for n in scored[1:]:
            np.add.at(out[rep], [pos[lab] for lab in labels(n).tolist()], out.pop(n))
    return out


def prune_module(net, unit_scores, sparsity):
    """Remove the lowest-scored channels of ``net`` in place (layer scope); returns ``net``."""
    g = net.graph
    ed = Editor(g, net)
    for edit in prune(g, per_stream(g, unit_scores), sparsity, what="units", scope="layer"):
        ed.apply(edit)
    return net


def gated_search(cfg, data, seed, sparsity):
    """DARTS on keep/drop channel gates, then the lowest keep probabilities pruned."""
    g = space(cfg["widths"], cfg["depths"], gated=("inner", "stream"))
    search = BilevelSearch(g, data.train, data.val, strategy="darts", discretization=None,
                           config={"epochs": cfg["pre"], "batch_size": BATCH, "w_lr": LR,
                                   "seed": seed, "device": "cpu"})
    net = search.run().module
    keep = {n: p.detach().numpy() for n, p in keep_probabilities(net, ties=False)[0].items()}
    prune_module(net, keep, sparsity)
    Editor(g, net).apply(UngateUnits(nodes=sorted(keep)))
    net.relaxation = None
    return net


def grow_wider(net, noise):
    """Net2WiderNet: every channel of every hidden node split in two (once per residual
    stream, whose nodes are one dependency group)."""
    g = net.graph
    ed = Editor(g, net)
    firsts = [nodes[0] for nodes in g.meta["streams"].values()]
    inner = [n for n in g.topological_order() if n.endswith("_c1")]
    for n in firsts + inner:
        ids = g.node(n)["units"].tolist()
        ed.apply(AddUnits(n, count=len(ids), init="split", source=ids, noise=noise))
    return net


def folded(net):
    """Torch layers with batch norm folded into the convolutions (eval mode)."""
    from torch.fx.experimental.optimization import fuse

    plain = net.net if isinstance(net, Plain) else torch_layers(net.graph, net)
    return fuse(copy.deepcopy(plain).eval())


def deploy(net, x):
    """The deployed form: :func:`folded`, traced by TorchScript and frozen (no Python per
    layer at run time)."""
    with torch.no_grad():
        return torch.jit.freeze(torch.jit.trace(folded(net), x[:1]))


def conv_stats(model, x) -> tuple[int, int, int]:
    """``(conv output channels, MACs per sample, parameters)`` of a torch network."""
    macs, chans = [0], [0]

    def hook(m, inp, out):
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            k = int(np.prod(m.kernel_size))
            macs[0] += out[0].numel() * (m.in_channels // m.groups) * k
            chans[0] += m.out_channels
        elif isinstance(m, nn.Linear):
            macs[0] += m.in_features * m.out_features

    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(x[:1])
    for h in hs:
        h.remove()
    return chans[0], macs[0], sum(p.numel() for p in model.parameters())


def tp_prune(net, sparsity, x):
    """Torch-Pruning's DepGraph + L1 magnitude on the torch layers of ``net``; ``None``
    when torch-pruning is not installed."""
    try:
        import torch_pruning as tp
    except ImportError:
        return None
    plain = torch_layers(net.graph, net)
    head = [m for m in plain.modules() if isinstance(m, nn.Linear)]
    pruner = tp.pruner.MetaPruner(plain.eval(), x[:1], importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=sparsity, ignored_layers=head)
    pruner.step()
    return Plain(plain.train())


def medians(models: dict, x, reps: int) -> dict:
    """Median seconds per call of each model on ``x``, alternating them every repetition."""
    inner = 20 if len(x) == 1 else 3
    times = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():  # TorchScript's profiling executor optimizes per shape
            for _ in range(10):
                m(x)
        for r in range(reps):
            order = list(models) if r % 2 == 0 else list(reversed(models))
            for k in order:
                t = time.perf_counter()
                for _ in range(inner):
                    models[k](x)
                times[k].append((time.perf_counter() - t) / inner)
    return {k: statistics.median(v) for k, v in times.items()}


def mean_std(values) -> str:
    v = [100 * a for a in values]
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{statistics.mean(v):.2f} ± {sd:.2f}"


def run(cfg, seeds, log=print, sparsities=SPARSITIES):
    data = load_dataset("digits")
    x_test = data.test[0]
    W, D, pre, ft = cfg["widths"], cfg["depths"], cfg["pre"], cfg["ft"]
    acc, nets = {}, {}

    def record(name, net, seed):
        acc.setdefault(name, []).append(accuracy(net, data.test))
        if seed == seeds[0]:
            nets[name] = net
        log(f"  seed {seed} {name}: {100 * acc[name][-1]:.2f}")

    for seed in seeds:
        t0 = time.time()
        record("unpruned", train(fresh(W, D, seed), data, pre + ft, seed), seed)
        base = train(fresh(W, D, seed), data, pre, seed)
        slim = fresh(W, D, seed)
        train(slim, data, pre, seed, loss_fn=slimming_loss(slim, cfg["lam"]))
        for sp, methods in sparsities.items():
            tag = f"{round(100 * sp)}%"
            crits = {"random": lambda n, s=seed: random_scores(n, s),
                     "L1 magnitude": lambda n: scores.magnitude(n, what="units"),
                     "Taylor": lambda n: taylor_scores(n, data)}
            for name, score in crits.items():
                if name in methods:
                    net = copy.deepcopy(base)
                    record(f"{name} {tag}", train(prune_module(net, score(net), sp), data, ft,
                                                  seed), seed)
            if "slimming" in methods:
                net = copy.deepcopy(slim)
                record(f"slimming {tag}", train(prune_module(net, scores.bn_scale(net), sp),
                                                data, ft, seed), seed)
            if "small dense" in methods:
                shape = prune_module(copy.deepcopy(base), random_scores(base, seed), sp).graph
                small = supernet.compile(copy.deepcopy(shape), seed=seed)
                record(f"small dense {tag}", train(small, data, pre + ft, seed), seed)
            tpn = tp_prune(copy.deepcopy(base), sp, x_test) if "Torch-Pruning" in methods \
                else None
            if tpn is not None:
                record(f"Torch-Pruning L1 {tag}", train(tpn, data, ft, seed), seed)
            if "gated search" in methods:
                record(f"gated search (darts) {tag}",
                       train(gated_search(cfg, data, seed, sp), data, ft, seed), seed)
        narrow = [max(1, w // 2) for w in W]
        record("narrow (half width)", train(fresh(narrow, D, seed), data, pre + ft, seed), seed)
        grown = train(fresh(narrow, D, seed), data, (pre + ft) // 2, seed)
        grow_wider(grown, cfg["noise"])
        if encode(grown.graph) != encode(space(W, D)):
            raise RuntimeError(f"Net2Wider grew {encode(grown.graph)}, not "
                               f"{encode(space(W, D))}")
        record("Net2Wider (half → full)", train(grown, data, pre + ft - (pre + ft) // 2, seed),
               seed)
        log(f"seed {seed} done in {time.time() - t0:.0f} s")
    return acc, nets, x_test


def tables(cfg, acc, nets, x_test, reps, have_tp):
    out = []
    dep = {k: deploy(n, x_test) for k, n in nets.items()}
    stats = {k: conv_stats(n.net if isinstance(n, Plain) else torch_layers(n.graph, n), x_test)
             for k, n in nets.items()}
    # latency of the distinct architectures (equal widths give equal latency)
    arch = {}
    for k in dep:
        arch.setdefault(stats[k][:2], k)
    reps_models = {k: dep[k] for k in arch.values()}
    lat = {b: medians(reps_models, x_test[:b], reps) for b in (1, 64)}
    ref = arch[stats["unpruned"][:2]]
    chans0 = stats["unpruned"][0]

    def latency(k):
        a = arch[stats[k][:2]]
        return [1e3 * lat[b][a] for b in (1, 64)] + [lat[b][ref] / lat[b][a] for b in (1, 64)]

    out.append("| method | level | channels kept | MACs | params | test acc. % (mean ± std) "
               "| latency b=1 (ms) | b=64 (ms) | speed-up b=1 | b=64 |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for k in acc:
        if k in ("narrow (half width)", "Net2Wider (half → full)"):
            continue
        ch, macs, params = stats[k]
        l1, l64, r1, r64 = latency(k)
        out.append(f"| {k} | channel | {ch}/{chans0} ({100 * ch / chans0:.0f}%) | {macs:,} "
                   f"| {params:,} | {mean_std(acc[k])} | {l1:.3f} | {l64:.2f} | {r1:.2f}x "
                   f"| {r64:.2f}x |")
    if not have_tp:
        out.append("\nTorch-Pruning rows left out: `pip install torch-pruning` (or the `bench` "
                   "extra) to run them.")
    out.append("")
    out.append("| growth | channels | MACs | params | test acc. % (mean ± std) |")
    out.append("|---|---|---|---|---|")
    for k in ("narrow (half width)", "unpruned", "Net2Wider (half → full)"):
        ch, macs, params = stats[k]
        name = "wide (full width)" if k == "unpruned" else k
        out.append(f"| {name} | {ch} | {macs:,} | {params:,} | {mean_std(acc[k])} |")
    # the compiled unit module against its deployed torch layers
    pairs = {"unpruned": nets["unpruned"], "L1 magnitude 50%": nets["L1 magnitude 50%"]}
    forms = {}
    for k, n in pairs.items():
        forms[(k, "compiled unit module")] = copy.deepcopy(n).eval()
        forms[(k, "torch layers")] = torch_layers(n.graph, n).eval()
        forms[(k, "torch layers, BN folded")] = folded(n)
        forms[(k, "TorchScript, frozen (deployed)")] = dep[k]
    lat2 = {b: medians(forms, x_test[:b], reps) for b in (1, 64)}
    out.append("")
    out.append("| form | network | b=1 (ms) | b=64 (ms) | speed-up b=1 | b=64 |")
    out.append("|---|---|---|---|---|---|")
    for (k, form) in forms:
        r = [lat2[b][("unpruned", form)] / lat2[b][(k, form)] for b in (1, 64)]
        out.append(f"| {form} | {k} | {1e3 * lat2[1][(k, form)]:.3f} | "
                   f"{1e3 * lat2[64][(k, form)]:.2f} | {r[0]:.2f}x | {r[1]:.2f}x |")
    return "\n".join(out)


def _worker(cfg, seed, queue, sparsities):
    torch.set_num_threads(1)
    acc, _, _ = run(cfg, [seed], log=lambda *a: None, sparsities=sparsities)
    queue.put((seed, acc))


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    p.add_argument("--seeds", type=int, default=None, help="seeds (default 3; quick: 1)")
    p.add_argument("--jobs", type=int, default=1,
                   help="train the seeds after the first in this many other processes (the "
                        "latency is measured once they are done, in this one)")
    p.add_argument("--cpu", type=int, default=1,
                   help="the core the latency is measured on (as taskset -c; -1: any)")
    p.add_argument("--high", action="store_true", help="also prune 7/8 of the channels")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    sparsities = {**SPARSITIES, **(HIGH if args.high else {})}
    cfg = dict(QUICK if args.quick else FULL)
    seeds = list(range(args.seeds or cfg["seeds"]))
    try:
        import torch_pruning  # noqa: F401
        have_tp = True
    except ImportError:
        have_tp = False
        print("torch-pruning is not installed: its rows are skipped "
              "(pip install torch-pruning, or the 'bench' extra)")
    t0 = time.time()
    import multiprocessing as mp

    queue, workers, rest = mp.get_context("fork").Queue(), [], []
    if args.jobs > 1:
        rest, seeds = seeds[1:], seeds[:1]
    for k in range(min(args.jobs - 1, len(rest)) if rest else 0):
        chunk = rest[k::args.jobs - 1]
        w = mp.get_context("fork").Process(target=lambda c=chunk: [
            _worker(cfg, s, queue, sparsities) for s in c])
        w.start()
        workers.append(w)
    acc, nets, x_test = run(cfg, seeds, sparsities=sparsities)
    got = dict(queue.get() for _ in rest)
    for w in workers:
        w.join()
    for seed in rest:
        for k, v in got[seed].items():
            acc[k] += v
    seeds = seeds + rest
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity") and args.cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {args.cpu})
    text = tables(cfg, acc, nets, x_test, cfg["reps"], have_tp)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nchannel_cnn widths {list(cfg['widths'])} depths {list(cfg['depths'])} on digits; "
          f"{len(seeds)} seed(s); budget {cfg['pre']} + {cfg['ft']} epochs; torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread; load average {load}; "
          f"{time.time() - t0:.0f} s\n")
    print(text)
    return text


if __name__ == "__main__":
    main()
