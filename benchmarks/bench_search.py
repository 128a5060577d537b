"""Search benchmarks: compiled super-networks against hand-written ones.

Parts (``--only``, several letters at once):

(d) DARTS forward + backward and the first-order step (architecture step on a validation
    batch, then a weight step) of the compiled DARTS super-network against a hand-written
    one of identical shape, weights and math (``MixedOp`` / ``Cell`` / ``Network`` below,
    written as in the DARTS reference code, whose step is reproduced too), and, with
    ``--reference-dir``, against the authors' own code. "Same economies" (``*_hand_lean``):
    the hand-written network also skips the ``none`` op and back-propagates the
    architecture loss to the architecture parameters only, as the engine does. Targets:
    <= 0.6x time, <= 0.7x peak memory.
(2) The second-order (unrolled) DARTS step, likewise; (p) the PC-DARTS step (partial
    channels, K=4, edge normalization; the authors' code with ``--pc-reference-dir``):
    ahead of their references.
(f) The compiled forward + backward in ``channels_last`` against contiguous tensors.
(s) Scale curve: step time and peak memory against batch size and cells (1x, 2x, 4x) for
    the reference, the normal and the memory-lean mode, with the largest network that fits
    in 16 GB by a linear fit.
(b) A GDAS weight step against the standalone discrete network of the sampled path
    (same path on both sides); ``benchmarks/bench_lean.py`` measures it at full size.
(c) Peak memory of a ProxylessNAS architecture step against a DARTS one as the number of
    candidates per edge grows: it must grow with the sampled paths (two), not the candidates.

The benchmark fetches nothing: the authors' code is read from the checkouts given.

Times: medians of alternating steps in one process. Peak memory: one fresh process per
measurement (peak resident size ``VmHWM`` above the resident size after building, the
high-water mark reset first), alternating, medians.

Usage::

    PYTHONPATH=. python benchmarks/bench_search.py            # C=16, 8 cells, batch 64, 32x32
    PYTHONPATH=. python benchmarks/bench_search.py --quick    # small settings
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from supernet import Graph, compile  # noqa: E402

PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]


# ---------------------------------------------------------------------- hand-written DARTS
class ReLUConvBN(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False),
                                nn.Conv2d(C_in, C_out, kernel_size, stride, padding, bias=False),
                                nn.BatchNorm2d(C_out, affine=affine))

    def forward(self, x):
        return self.op(x)


class DilConv(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, padding, dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine))

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_in, 1, padding=0, bias=False),
            nn.BatchNorm2d(C_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, 1, padding, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine))

    def forward(self, x):
        return self.op(x)


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    def __init__(self, C_in, C_out, affine=True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


OPS = {
    "none": lambda C, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1,
                                                           count_include_pad=False),
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "skip_connect": lambda C, stride, affine: (nn.Identity() if stride == 1
                                               else FactorizedReduce(C, C, affine=affine)),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine=affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine=affine),
}


class MixedOp(nn.Module):
    lean = False  # skip the zero op (its product with the weight is zero, so is its gradient)

    def __init__(self, C, stride):
        super().__init__()
        self._ops = nn.ModuleList()
        for primitive in PRIMITIVES:
            op = OPS[primitive](C, stride, False)
            if "pool" in primitive:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            self._ops.append(op)

    def forward(self, x, weights):
        if self.lean:
            return sum(w * op(x) for w, op in zip(weights[1:], self._ops[1:]))
        return sum(w * op(x) for w, op in zip(weights, self._ops))


def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class PartialMixedOp(MixedOp):
    """PC-DARTS (Xu et al., ICLR 2020): the candidates see 1/k of the channels, the others
    bypass them (max-pooled on reduction edges), then the channels are shuffled."""

    k = 4

    def __init__(self, C, stride):
        super().__init__(C // self.k, stride)
        self.mp = nn.MaxPool2d(2, 2)

    def forward(self, x, weights):
        c = x.shape[1] // self.k
        part, rest = x[:, :c], x[:, c:]
        y = super().forward(part, weights)
        if y.shape[2] != x.shape[2]:
            rest = self.mp(rest)
        return channel_shuffle(torch.cat([y, rest], dim=1), self.k)


class Cell(nn.Module):
    def __init__(self, steps, multiplier, C_prev_prev, C_prev, C, reduction, reduction_prev,
                 mixed=MixedOp):
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(C_prev_prev, C, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)
        self._steps, self._multiplier = steps, multiplier
        self._ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self._ops.append(mixed(C, stride))

    def forward(self, s0, s1, weights, edge_weights=None):
        s0, s1 = self.preprocess0(s0), self.preprocess1(s1)
        states = [s0, s1]
        offset = 0
        for _ in range(self._steps):
            if edge_weights is None:
                s = sum(self._ops[offset + j](h, weights[offset + j])
                        for j, h in enumerate(states))
            else:
                s = sum(edge_weights[offset + j] * self._ops[offset + j](h, weights[offset + j])
                        for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier:], dim=1)


class Network(nn.Module):
    """The DARTS search network; ``partial=True``: PC-DARTS (partial channels and edge
    normalization weights ``β``, softmax over each node's in-edges)."""

    def __init__(self, C, num_classes, layers, steps=4, multiplier=4, stem_multiplier=3,
                 partial=False):
        super().__init__()
        self._steps, self.partial = steps, partial
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(3, C_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C_curr))
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in [layers // 3, 2 * layers // 3]
            if reduction:
                C_curr *= 2
            cell = Cell(steps, multiplier, C_prev_prev, C_prev, C_curr, reduction, reduction_prev,
                        PartialMixedOp if partial else MixedOp)
            reduction_prev = reduction
            self.cells.append(cell)
            C_prev_prev, C_prev = C_prev, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        k = sum(2 + i for i in range(steps))
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(k, len(PRIMITIVES)))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(k, len(PRIMITIVES)))
        if partial:
            self.betas_normal = nn.Parameter(1e-3 * torch.randn(k))
            self.betas_reduce = nn.Parameter(1e-3 * torch.randn(k))

    def arch_parameters(self):
        return [p for n, p in self.named_parameters() if n.startswith(("alphas", "betas"))]

    def weights(self):
        return [p for n, p in self.named_parameters() if not n.startswith(("alphas", "betas"))]

    def _edge_weights(self, betas):
        out, start = [], 0
        for i in range(self._steps):  # a softmax over the in-edges of each node
            out.append(F.softmax(betas[start:start + 2 + i], dim=-1))
            start += 2 + i
        return torch.cat(out)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        wn = F.softmax(self.alphas_normal, dim=-1)
        wr = F.softmax(self.alphas_reduce, dim=-1)
        en = er = None
        if self.partial:
            en, er = self._edge_weights(self.betas_normal), self._edge_weights(self.betas_reduce)
        for cell in self.cells:
            if cell.reduction:
                s0, s1 = s1, cell(s0, s1, wr, er)
            else:
                s0, s1 = s1, cell(s0, s1, wn, en)
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1))


# ---------------------------------------------------------------------- compiled DARTS
def supernet_graph(C, layers):
    """The DARTS search network of the registered ``darts`` space."""
    from search_spaces import create_space

    return create_space("darts", C=C, layers=layers), "search_spaces darts"


def copy_into_hand(compiled, hand) -> float:
    """Load the compiled weights and alphas into the hand-written network (same order);
    returns the max output difference in eval mode (identical math -> ~0)."""
    cw, hw = compiled.weights(), hand.weights()
    if [p.shape for p in cw] != [p.shape for p in hw]:
        return float("nan")
    with torch.no_grad():
        for a, b in zip(cw, hw):
            b.copy_(a)
        ca, hb = compiled.buffers(), hand.buffers()
        for a, b in zip(ca, hb):
            b.copy_(a)
        for name, alpha in (("normal", hand.alphas_normal), ("reduce", hand.alphas_reduce)):
            keys = [k for k in compiled.gates() if k.startswith(name + ":")]
            alpha.copy_(torch.cat([compiled.arch[k] for k in keys]))
    compiled.eval(), hand.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        d = float((compiled(x) - hand(x)).abs().max())
    compiled.train(), hand.train()
    return d


# ---------------------------------------------------------------------- steps
def make_data(batch, size, classes=10, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 3, size, size, generator=g),
             torch.randint(0, classes, (batch,), generator=g)) for _ in range(n)]


def compiled_search(graph, relaxation, batch, size, arch=True, module=None, second_order=False):
    from supernet.search import BilevelSearch

    x, y = make_data(batch, size, n=1)[0]
    data = (torch.cat([x, x]), torch.cat([y, y]))
    cfg = {"epochs": 1, "batch_size": batch, "eval_batches": 0, "arch_update": arch,
           "second_order": second_order}
    return BilevelSearch(graph, data, config=cfg, relaxation=relaxation, discretization=None,
                         module=module)


def step_compiled(s, batches):
    tb, vb = batches
    s._arch_step(vb, s.batch_fn(tb), 0.025, 0)
    s._weight_step(*s.batch_fn(tb))


def hand_step(net, w_opt, a_opt, batches):
    """The DARTS reference step (first order): architect step, then weight step."""
    (x, y), (xv, yv) = batches
    a_opt.zero_grad()
    F.cross_entropy(net(xv), yv).backward()
    a_opt.step()
    w_opt.zero_grad()
    F.cross_entropy(net(x), y).backward()
    nn.utils.clip_grad_norm_(net.weights(), 5.0)
    w_opt.step()


def hand_step_lean(net, w_opt, a_opt, batches):
    """The same step with the engine's two economies: the zero op is skipped and the
    architecture step back-propagates to the architecture parameters only."""
    (x, y), (xv, yv) = batches
    a_opt.zero_grad()
    torch.autograd.backward(F.cross_entropy(net(xv), yv), inputs=net.arch_parameters())
    a_opt.step()
    w_opt.zero_grad()
    torch.autograd.backward(F.cross_entropy(net(x), y), inputs=net.weights())
    nn.utils.clip_grad_norm_(net.weights(), 5.0)
    w_opt.step()


def hand_optims(net):
    return (torch.optim.SGD(net.weights(), 0.025, momentum=0.9, weight_decay=3e-4),
            torch.optim.Adam(net.arch_parameters(), 3e-4, betas=(0.5, 0.999), weight_decay=1e-3))


def hand_fwdbwd(net, batches, lean=False):
    """Forward, loss and backward to every parameter (weights and architecture)."""
    (x, y), _ = batches
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()


def compiled_fwdbwd(module, batches):
    (x, y), _ = batches
    module.zero_grad(set_to_none=True)
    F.cross_entropy(module(x), y).backward()


def hand_step_unrolled(net, w_opt, a_opt, batches, lr, lean=False, r=0.01):
    """The DARTS second-order step (Liu et al., ICLR 2019, Eq. 6-8), then a weight step.

    Virtual step ``w' = w - lr (momentum m + dw + weight_decay w)``; the architecture
    gradient ``dα L_val(w') - lr (dα L_train(w+) - dα L_train(w-)) / 2ε`` with
    ``w± = w ± ε dw' L_val(w')``, ``ε = r / ||dw' L_val(w')||``. The reference code builds a
    new network for ``w'``; this one steps the weights in place and puts them back (less
    time and memory than the reference code: a conservative reference)."""
    (x, y), (xv, yv) = batches
    ws, arch = net.weights(), net.arch_parameters()
    group = w_opt.param_groups[0]
    mom, wd = group["momentum"], group["weight_decay"]
    saved = [w.detach().clone() for w in ws]
    loss = F.cross_entropy(net(x), y)
    gw = torch.autograd.grad(loss, ws)
    with torch.no_grad():
        for w, g in zip(ws, gw):
            m = w_opt.state.get(w, {}).get("momentum_buffer")
            step = g + wd * w if m is None else mom * m + g + wd * w
            w.sub_(lr * step)
    a_opt.zero_grad()
    grads = torch.autograd.grad(F.cross_entropy(net(xv), yv), arch + ws)
    d_alpha, d_w = grads[:len(arch)], grads[len(arch):]
    eps = r / torch.cat([g.flatten() for g in d_w]).norm()
    hv = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for w, s0, g in zip(ws, saved, d_w):
                w.copy_(s0 + sign * eps * g)
        hv.append(torch.autograd.grad(F.cross_entropy(net(x), y), arch))
    with torch.no_grad():
        for w, s0 in zip(ws, saved):
            w.copy_(s0)
    for a, da, gp, gn in zip(arch, d_alpha, *hv):
        a.grad = da - lr * (gp - gn) / (2 * eps)
    a_opt.step()
    w_opt.zero_grad()
    F.cross_entropy(net(x), y).backward()
    nn.utils.clip_grad_norm_(net.weights(), 5.0)
    w_opt.step()


def _cpu_shim():
    """The authors' code calls ``.cuda()`` everywhere; on a machine without CUDA it is made
    the identity (nothing else of their code is changed)."""
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *a, **k: self
        nn.Module.cuda = lambda self, *a, **k: self


def authors_code(directory):
    """``(model_search, architect)`` modules of the authors' checkout ``directory`` (the
    DARTS repository, whose code is in ``cnn/``, or the PC-DARTS one)."""
    import importlib

    d = os.path.abspath(directory)
    if os.path.isfile(os.path.join(d, "cnn", "model_search.py")):
        d = os.path.join(d, "cnn")
    if not os.path.isfile(os.path.join(d, "model_search.py")):
        raise SystemExit(f"--reference-dir {directory}: no model_search.py there (nor in cnn/)")
    _cpu_shim()
    sys.path.insert(0, d)
    return importlib.import_module("model_search"), importlib.import_module("architect")


def build_authors(kind, args, batches):
    """The authors' network, ``Architect`` and weight step (their ``train_search.py``)."""
    directory = args.pc_reference_dir if kind.startswith("pcdarts") else args.reference_dir
    model_search, architect = authors_code(directory)
    net = model_search.Network(args.C, 10, args.layers, nn.CrossEntropyLoss())
    ns = argparse.Namespace(momentum=0.9, weight_decay=3e-4, arch_weight_decay=1e-3,
                            arch_learning_rate=6e-4 if kind.startswith("pcdarts") else 3e-4)
    arch = architect.Architect(net, ns)
    w_opt = torch.optim.SGD(net.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
    unrolled = kind.startswith("darts2")
    (x, y), (xv, yv) = batches

    def step():
        arch.step(x, y, xv, yv, 0.025, w_opt, unrolled=unrolled)
        w_opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        w_opt.step()

    return step, {"weights": sum(p.numel() for p in net.parameters())}


def pcdarts_graph(C, layers):
    from supernet.search.relaxations import mark_partial

    g, src = supernet_graph(C, layers)
    mark_partial(g, 4)
    return g, src + ", partial=4"


def build(kind, args):
    """``(step callable, info)`` for one benchmarked implementation."""
    C, L, B, S = args.C, args.layers, args.batch, args.size
    batches = make_data(B, S, seed=getattr(args, "seed", 0))
    if kind == "darts_hand":
        net = Network(C, 10, L)
        w, a = hand_optims(net)
        return (lambda: hand_step(net, w, a, batches)), {}
    if kind == "darts_hand_lean":
        net = Network(C, 10, L)
        for m in net.modules():
            if isinstance(m, MixedOp):
                m.lean = True
        w, a = hand_optims(net)
        return (lambda: hand_step_lean(net, w, a, batches)), {}
    if kind in ("darts_compiled", "darts_compiled_lean"):
        from supernet.compiler.recompute import use_memory_mode

        g, src = supernet_graph(C, L)
        s = compiled_search(g, None, B, S)
        use_memory_mode(s.module, "lean" if kind.endswith("_lean") else "normal")
        return (lambda: step_compiled(s, batches)), {"graph": src}
    if kind.endswith("_authors"):
        return build_authors(kind, args, batches)
    if kind in ("fwdbwd_hand", "fwdbwd_hand_lean", "pcdarts_hand", "pcdarts_hand_lean",
                "darts2_hand", "darts2_hand_lean"):
        lean = kind.endswith("_lean")
        net = Network(C, 10, L, partial=kind.startswith("pcdarts"))
        for m in net.modules():
            if isinstance(m, MixedOp):
                m.lean = lean
        if kind.startswith("fwdbwd"):
            return (lambda: hand_fwdbwd(net, batches)), {}
        w, a = hand_optims(net)
        if kind.startswith("darts2"):
            return (lambda: hand_step_unrolled(net, w, a, batches, 0.025, lean)), {}
        return (lambda: (hand_step_lean if lean else hand_step)(net, w, a, batches)), {}
    if kind.startswith("fwdbwd_compiled"):
        g, src = supernet_graph(C, L)
        module = compile(g)
        if kind != "fwdbwd_compiled":
            module.memory_format = kind.split("fwdbwd_compiled_")[1]
        return (lambda: compiled_fwdbwd(module, batches)), {}
    if kind == "darts2_compiled":
        g, src = supernet_graph(C, L)
        s = compiled_search(g, None, B, S, second_order=True)
        return (lambda: step_compiled(s, batches)), {}
    if kind == "pcdarts_compiled":
        from supernet.search.relaxations import PartialChannels

        g, src = pcdarts_graph(C, L)
        s = compiled_search(g, PartialChannels(4), B, S)
        return (lambda: step_compiled(s, batches)), {}
    if kind in ("gdas_weights", "gdas_step", "gdas_discrete"):
        return build_gdas(kind, args, batches)
    if kind.startswith(("proxyless_", "softmax_")):
        relax_name, k = kind.split("_")
        return build_chain(relax_name, int(k), args, batches)
    raise SystemExit(f"unknown kind {kind}")


def _gdas_path(args):
    from supernet.search.relaxations import GumbelMax, use_relaxation

    g, _ = supernet_graph(args.C, args.layers)
    net = compile(g)
    relax = GumbelMax()
    use_relaxation(net, relax)
    torch.manual_seed(1234)
    decisions = relax(dict(net.arch.items()))
    return g, net, relax, {k: d.active[0][0] for k, d in decisions.items()}


def build_gdas(kind, args, batches):
    from supernet.compiler.standalone import standalone
    from supernet.edits import Editor
    from supernet.search.choices.layer import ChoiceSpace

    g, net, relax, path = _gdas_path(args)
    (x, y), _ = batches
    if kind == "gdas_discrete":
        g.meta["constraints"] = {}
        space = ChoiceSpace(g, net)
        choice = {key: e.ops[path[e.keys[0]]] for key, _, e in space.edges()}
        ed = Editor(g)
        for e in space.edits(choice):
            ed.apply(e)
        plain = standalone(g)
        opt = torch.optim.SGD(plain.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(plain(x), y).backward()
            nn.utils.clip_grad_norm_(list(plain.parameters()), 5.0)
            opt.step()

        return step, {"path_ops": sorted(set(choice.values()))}
    s = compiled_search(g, relax, args.batch, args.size, module=net)
    torch.manual_seed(1234)
    again = {k: d.active[0][0] for k, d in relax(dict(net.arch.items())).items()}
    assert again == path, "the GDAS step must run the path of the discrete network"

    def step():
        torch.manual_seed(1234)  # the same Gumbel noise: the same path as the discrete net
        if kind == "gdas_step":
            step_compiled(s, batches)
        else:
            s._weight_step((x,), {}, y)

    return step, {}


CHAIN_OPS = ["conv_3x3", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
             "sep_conv_7x7", "conv_1x1", "conv_7x1_1x7", "relu_conv_bn", "skip_connect",
             "max_pool_3x3", "avg_pool_3x3"]


def chain_graph(C, k, blocks):
    g = Graph("layer", name="chain")
    g.add_input("x", channels=3)
    g.add_node("stem", channels=C)
    g.add_edge("x", "stem", "stem_conv_bn")
    prev = "stem"
    for i in range(blocks):
        g.add_node(f"b{i}", channels=C)
        g.add_edge(prev, f"b{i}", CHAIN_OPS[:k])
        prev = f"b{i}"
    g.add_node("gap", channels=C)
    g.add_edge(prev, "gap", "global_avg_pool")
    g.add_node("logits", channels=10)
    g.add_edge("gap", "logits", "classifier")
    g.set_outputs(["logits"])
    return g


def build_chain(relax_name, k, args, batches):
    from supernet.gates import Softmax
    from supernet.search.relaxations import BinaryGates

    relax = BinaryGates() if relax_name == "proxyless" else Softmax()
    s = compiled_search(chain_graph(args.chain_C, k, args.blocks), relax, args.chain_batch,
                        args.chain_size)
    (x, y), vb = make_data(args.chain_batch, args.chain_size)

    def step():  # the architecture step, where DARTS runs every candidate
        s._arch_step(vb, s.batch_fn((x, y)), 0.025, 0)

    return step, {}


# ---------------------------------------------------------------------- measuring
def status_kb(field: str) -> int:
    """A ``/proc/self/status`` entry in kB (``VmRSS``: resident now, ``VmHWM``: peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def worker(kind, args) -> dict:
    # ru_maxrss is no use here: exec carries the parent's high-water mark into the child.
    torch.manual_seed(0)
    step, info = build(kind, args)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident size
    rest = status_kb("VmRSS")
    for _ in range(args.mem_steps):
        step()
    peak = status_kb("VmHWM")
    return {"kind": kind, "peak_mb": (peak - rest) / 1024, "rest_mb": rest / 1024, **info}


def memory(kinds, args) -> dict[str, float]:
    """Peak memory per kind: one fresh process per measurement, alternating."""
    out = {k: [] for k in kinds}
    for _ in range(args.mem_repeats):
        for k in kinds:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", k, *args.passthrough]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            out[k].append(json.loads(res.stdout.strip().splitlines()[-1])["peak_mb"])
    return {k: statistics.median(v) for k, v in out.items()}


def median_times(steps: dict, warmup: int, repeats: int) -> dict[str, float]:
    """Median time of each step function after ``warmup`` calls, the steps alternating."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {k: [] for k in steps}
    for _ in range(repeats):
        for k, step in steps.items():
            t = time.perf_counter()
            step()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def timing(kinds, args) -> dict[str, float]:
    """Median step time per kind, steps alternating between kinds in this process."""
    steps = {}
    for k in kinds:
        torch.manual_seed(0)
        steps[k] = build(k, args)[0]
    return median_times(steps, args.warmup, args.repeats)


def report(title, base, other, t, m=None):
    print(f"\n{title}")
    line = f"  time   {base}: {t[base] * 1e3:8.1f} ms   {other}: {t[other] * 1e3:8.1f} ms   " \
           f"ratio {t[other] / t[base]:.3f}"
    print(line)
    if m is not None:
        print(f"  memory {base}: {m[base]:8.1f} MB   {other}: {m[other]:8.1f} MB   "
              f"ratio {m[other] / m[base]:.3f}")


# ---------------------------------------------------------------------- comparisons
# (name, reference kind, supernet kind, what is compared); the reference of each pair is
# the DARTS reference code's math written in this file, or the authors' code itself
# (``--reference-dir``, ``--pc-reference-dir``).
PAIRS = {
    "d": [("forward + backward", "fwdbwd_hand", "fwdbwd_compiled"),
          ("forward + backward, same economies", "fwdbwd_hand_lean", "fwdbwd_compiled"),
          ("first-order DARTS step", "darts_hand", "darts_compiled"),
          ("first-order DARTS step, same economies", "darts_hand_lean", "darts_compiled")],
    "2": [("second-order DARTS step", "darts2_hand", "darts2_compiled"),
          ("second-order DARTS step, same economies", "darts2_hand_lean", "darts2_compiled")],
    "p": [("PC-DARTS step", "pcdarts_hand", "pcdarts_compiled"),
          ("PC-DARTS step, same economies", "pcdarts_hand_lean", "pcdarts_compiled")],
    "f": [("memory format: forward + backward, channels_last / contiguous",
           "fwdbwd_compiled_contiguous", "fwdbwd_compiled_channels_last")],
}
AUTHORS = {
    "d": [("first-order DARTS step, authors' code", "darts_authors", "darts_compiled")],
    "2": [("second-order DARTS step, authors' code", "darts2_authors", "darts2_compiled")],
}
PC_AUTHORS = {"p": [("PC-DARTS step, authors' code", "pcdarts_authors", "pcdarts_compiled")]}


def run_worker(kind, args) -> dict:
    """One process, one kind, one seed: build, then ``--steps`` steps (the first a warm-up);
    the peak resident size above the size after building, and the times of the others."""
    torch.manual_seed(args.seed)
    step, info = build(kind, args)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident size
    rest = status_kb("VmRSS")
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    peak = status_kb("VmHWM")
    return {"kind": kind, "peak_mb": (peak - rest) / 1024, "times": times[1:] or times, **info}


def measure(kinds, args, overrides=None) -> dict[str, list[dict]]:
    """Per kind, one result per seed: a fresh process each, the kinds alternating within
    each seed's repetition."""
    out = {k: [] for k in kinds}
    flags = dict(zip(args.passthrough[::2], args.passthrough[1::2]))
    flags.update(overrides or {})
    base = [x for kv in flags.items() for x in kv]
    for seed in range(args.seeds):
        for k in kinds:
            cmd = [sys.executable, os.path.abspath(__file__), "--run-worker", k, "--seed",
                   str(seed), "--steps", str(args.steps), *base]
            if args.reference_dir:
                cmd += ["--reference-dir", args.reference_dir]
            if args.pc_reference_dir:
                cmd += ["--pc-reference-dir", args.pc_reference_dir]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(f"{k} failed:\n{res.stderr[-3000:]}")
            r = json.loads(res.stdout.strip().splitlines()[-1])
            r["time"] = statistics.median(r["times"])
            out[k].append(r)
    return out


def _mean_std(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def _fmt_ratio(xs):
    m, sd = _mean_std(xs)
    return f"{m:.3f} ± {sd:.3f}"


def comparisons(args, parts) -> None:
    """The table of reference / supernet ratios: time (median step of each process) and
    peak memory, ratios taken within each seed's repetition, mean ± std over the seeds."""
    rows = []
    for part in parts:
        pairs = list(PAIRS.get(part, []))
        if args.reference_dir:
            pairs += AUTHORS.get(part, [])
        if args.pc_reference_dir:
            pairs += PC_AUTHORS.get(part, [])
        if not pairs:
            continue
        over = {"--batch": str(args.batch2)} if part == "2" else {}
        kinds = list(dict.fromkeys(k for _, a, b in pairs for k in (a, b)))
        load0 = os.getloadavg()[0]
        res = measure(kinds, args, over)
        load1 = os.getloadavg()[0]
        batch = args.batch2 if part == "2" else args.batch
        shapes = f"C={args.C}, {args.layers} cells, batch {batch}, {args.size}x{args.size}"
        for name, ref, ours in pairs:
            tr = [b["time"] / a["time"] for a, b in zip(res[ref], res[ours])]
            mr = [b["peak_mb"] / a["peak_mb"] for a, b in zip(res[ref], res[ours])]
            rows.append((name, shapes, ref, ours,
                         statistics.median(a["time"] for a in res[ref]),
                         statistics.median(b["time"] for b in res[ours]),
                         statistics.median(a["peak_mb"] for a in res[ref]),
                         statistics.median(b["peak_mb"] for b in res[ours]),
                         _fmt_ratio(tr), _fmt_ratio(mr), f"{load0:.1f}-{load1:.1f}"))
    print(f"\n| comparison | shapes | reference | supernet | time ref | time supernet | "
          f"time ratio | memory ref | memory supernet | memory ratio | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, shapes, ref, ours, t0, t1, m0, m1, tr, mr, load) in rows:
        print(f"| {name} | {shapes} | `{ref}` | `{ours}` | {t0:.3f} s | {t1:.3f} s | {tr} | "
              f"{m0:.0f} MB | {m1:.0f} MB | {mr} | {load} |")


def scale_curve(args) -> None:
    """Step time and peak memory of the first-order DARTS step against batch size and cells
    (1x, 2x, 4x): the hand-written reference with the same economies, the compiled network
    in the normal and in the memory-lean mode; a least squares line of peak memory along
    each axis gives the largest batch and the most cells that fit in 16 GB."""
    B, L = args.scale_batch, args.scale_layers
    points = [(B, L), (2 * B, L), (4 * B, L), (B, 2 * L), (B, 4 * L)]
    kinds = ["darts_hand_lean", "darts_compiled", "darts_compiled_lean"]
    labels = ["reference (same economies)", "supernet, normal mode", "supernet, lean mode"]
    load0 = os.getloadavg()[0]
    res = {}
    for b, layers in points:
        res[(b, layers)] = measure(kinds, args, {"--batch": str(b), "--layers": str(layers),
                                                 "--C": str(args.scale_C),
                                                 "--size": str(args.scale_size)})
    load1 = os.getloadavg()[0]
    print(f"\nScale curve: first-order DARTS step, C={args.scale_C}, "
          f"{args.scale_size}x{args.scale_size}; medians over {args.seeds} seed(s); "
          f"load {load0:.1f}-{load1:.1f}")
    print("\n| batch | cells | time reference | time normal | time lean | peak reference | "
          "peak normal | peak lean | normal / reference | lean / reference |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    fits = {k: [] for k in kinds}
    for (b, layers), r in res.items():
        t = {k: statistics.median(x["time"] for x in r[k]) for k in kinds}
        m = {k: statistics.median(x["peak_mb"] for x in r[k]) for k in kinds}
        for k in kinds:
            fits[k].append((b, layers, m[k]))
        ref, normal, lean = kinds
        print(f"| {b} | {layers} | {t[ref]:.3f} s | {t[normal]:.3f} s | {t[lean]:.3f} s | "
              f"{m[ref]:.0f} MB | {m[normal]:.0f} MB | {m[lean]:.0f} MB | "
              f"{m[normal] / m[ref]:.3f} | {m[lean] / m[ref]:.3f} |")
    print(f"\nLinear fits of peak memory, along each axis: ``peak = a + b * batch`` at {L} "
          f"cells, ``peak = a + b * cells`` at batch {B}; residual: the largest relative "
          "distance of a point to its line.")
    print(f"\n| mode | MB per sample | residual | largest batch in 16 GB at {L} cells | "
          f"MB per cell | residual | largest number of cells in 16 GB at batch {B} |")
    print("|---|---|---|---|---|---|---|")
    for k, label in zip(kinds, labels):
        pts = fits[k]
        a_b, b_b, r_b = _line((pts[i][0], pts[i][2]) for i in (0, 1, 2))
        a_c, b_c, r_c = _line((pts[i][1], pts[i][2]) for i in (0, 3, 4))
        print(f"| {label} | {b_b:.1f} | {r_b:.3f} | {(16 * 1024 - a_b) / b_b:.0f} "
              f"(extrapolated) | {b_c:.1f} | {r_c:.3f} | {(16 * 1024 - a_c) / b_c:.0f} "
              f"(extrapolated) |")


def _line(points):
    """Least squares ``y = a + b x`` of ``(x, y)`` points: ``(a, b, largest relative
    residual)``."""
    xs, ys = zip(*points)
    mx, my = statistics.mean(xs), statistics.mean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    a = my - b * mx
    return a, b, max(abs(y - (a + b * x)) / y for x, y in zip(xs, ys))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: C=8, 5 cells, batch 16, 16x16 (second order: batch 8); "
                        "2 seeds, 2 steps")
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batch2", type=int, default=16, help="batch of the second-order step")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seeds", type=int, default=3,
                   help="repetitions (one seed each) of the comparisons and the scale curve")
    p.add_argument("--steps", type=int, default=3,
                   help="steps per process in the comparisons (the first is a warm-up)")
    p.add_argument("--reference-dir", default=None,
                   help="a checkout of the DARTS authors' code (github.com/quark0/darts): "
                        "compare against it too")
    p.add_argument("--pc-reference-dir", default=None,
                   help="a checkout of the PC-DARTS authors' code "
                        "(github.com/yuhuixu1993/PC-DARTS)")
    p.add_argument("--scale-C", type=int, default=16)
    p.add_argument("--scale-layers", type=int, default=5)
    p.add_argument("--scale-batch", type=int, default=4)
    p.add_argument("--scale-size", type=int, default=32)
    p.add_argument("--blocks", type=int, default=6, help="chain blocks for (c)")
    p.add_argument("--candidates", default="2,4,8,12", help="candidates per edge for (c)")
    p.add_argument("--chain-C", type=int, default=16, help="channels of the chain in (c)")
    p.add_argument("--chain-batch", type=int, default=64)
    p.add_argument("--chain-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5, help="timed steps in (b)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--mem-repeats", type=int, default=3, help="memory processes in (b), (c)")
    p.add_argument("--mem-steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: stable medians on a shared machine)")
    p.add_argument("--only", default="d2pfbc",
                   help="parts: d (DARTS forward+backward and first-order step), 2 (second "
                        "order), p (PC-DARTS), f (memory format), s (scale curve), b (GDAS), "
                        "c (ProxylessNAS memory)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--run-worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.C, args.layers, args.batch, args.size, args.batch2 = 8, 5, 16, 16, 8
        args.seeds, args.steps = min(args.seeds, 2), 2
        args.scale_C, args.scale_size, args.scale_batch, args.scale_layers = 4, 8, 2, 3
    if args.threads:
        torch.set_num_threads(args.threads)
    args.passthrough = ["--C", str(args.C), "--layers", str(args.layers), "--batch",
                        str(args.batch), "--size", str(args.size), "--blocks", str(args.blocks),
                        "--chain-C", str(args.chain_C), "--chain-batch", str(args.chain_batch),
                        "--chain-size", str(args.chain_size),
                        "--mem-steps", str(args.mem_steps)] + (
                            ["--threads", str(args.threads)] if args.threads else [])
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return
    if args.run_worker:
        print(json.dumps(run_worker(args.run_worker, args)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); C={args.C}, "
          f"{args.layers} cells, batch {args.batch}, {args.size}x{args.size}; {args.seeds} "
          f"seed(s), {args.steps} steps per process; load average {os.getloadavg()}")
    if "d" in args.only:
        g, src = supernet_graph(args.C, args.layers)
        torch.manual_seed(0)
        comp = compile(g)
        comp.memory_format = "contiguous"
        hand = Network(args.C, 10, args.layers)
        n_c = sum(p.numel() for p in comp.weights())
        n_h = sum(p.numel() for p in hand.weights())
        print(f"\nDARTS compiled from {src}: {n_c} weights; hand-written: {n_h} weights; "
              f"max |output difference| with the same weights: {copy_into_hand(comp, hand):.2e}")
        g, src = pcdarts_graph(args.C, args.layers)
        n_p = sum(p.numel() for p in compile(g).weights())
        n_hp = sum(p.numel() for p in Network(args.C, 10, args.layers, partial=True).weights())
        print(f"PC-DARTS compiled: {n_p} weights; hand-written: {n_hp} weights")
    for d in (args.reference_dir, args.pc_reference_dir):
        if d and not any(os.path.isfile(os.path.join(d, *sub, "model_search.py"))
                         for sub in ((), ("cnn",))):
            raise SystemExit(f"{d}: no model_search.py there (nor in cnn/); give a checkout of "
                             "the authors' code")
    parts = [c for c in args.only if c in "d2pf"]
    if parts:
        comparisons(args, parts)
    if "s" in args.only:
        scale_curve(args)
    if "b" in args.only:
        kinds = ["gdas_discrete", "gdas_weights", "gdas_step"]
        t = timing(kinds, args)
        m = memory(kinds[:2], args)
        report("(b) GDAS weight step vs the standalone network of the sampled path",
               "gdas_discrete", "gdas_weights", t, m)
        print(f"  (full GDAS step, arch + weights: {t['gdas_step'] * 1e3:.1f} ms)")
    if "c" in args.only:
        ks = [int(k) for k in args.candidates.split(",")]
        kinds = [f"{r}_{k}" for k in ks for r in ("softmax", "proxyless")]
        m = memory(kinds, args)
        print(f"\n(c) architecture-step peak memory (MB), chain of {args.blocks} gated blocks, "
              f"C={args.chain_C}, batch {args.chain_batch}, {args.chain_size}x{args.chain_size}")
        print("  candidates   DARTS   ProxylessNAS   ratio")
        for k in ks:
            d, px = m[f"softmax_{k}"], m[f"proxyless_{k}"]
            print(f"  {k:10d} {d:7.1f} {px:14.1f}   {px / d:.3f}")
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
