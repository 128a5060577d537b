"""Hand-written DARTS networks in plain PyTorch, the oracles of the DARTS space tests.

Written from the definitions of the DARTS paper (Liu et al., ICLR 2019, section 3 and
appendix A) and the module layout its code release documents (a cell registers its two
preprocessing modules, then its ops in genotype order; the network registers the stem, the
cells, the auxiliary head, the classifier), without the supernet engine, so that a mistake
in the graph, the compiler or the registry ops shows as a difference.
"""

from __future__ import annotations

import torch
import torch.nn as nn

PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]


def _conv(dim):
    return nn.Conv1d if dim == 1 else nn.Conv2d


def _bn(dim):
    return nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        index = (slice(None), slice(None)) + (slice(None, None, self.stride),) * (x.dim() - 2)
        return x[index] * 0.0


class Shrink(nn.Module):
    """Factorized reduce: two 1x1 stride-2 convs, one shifted by a pixel, then BN."""

    def __init__(self, c_in, c_out, affine, dim):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = _conv(dim)(c_in, c_out // 2, 1, 2, bias=False)
        self.conv_2 = _conv(dim)(c_in, c_out // 2, 1, 2, bias=False)
        self.bn = _bn(dim)(c_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        shifted = x[(slice(None), slice(None)) + (slice(1, None),) * (x.dim() - 2)]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], 1))


def relu_conv_bn(c_in, c_out, affine, dim):
    return nn.Sequential(nn.ReLU(), _conv(dim)(c_in, c_out, 1, bias=False),
                         _bn(dim)(c_out, affine=affine))


def separable(C, k, stride, affine, dim):
    Conv, BN = _conv(dim), _bn(dim)
    layers = []
    for s in (stride, 1):  # the separable conv is applied twice, stride on the first
        layers += [nn.ReLU(), Conv(C, C, k, s, k // 2, groups=C, bias=False),
                   Conv(C, C, 1, bias=False), BN(C, affine=affine)]
    return nn.Sequential(*layers)


def dilated(C, k, stride, affine, dim):
    Conv = _conv(dim)
    return nn.Sequential(nn.ReLU(), Conv(C, C, k, stride, k - 1, 2, groups=C, bias=False),
                         Conv(C, C, 1, bias=False), _bn(dim)(C, affine=affine))


def make_op(name, C, stride, affine, dim=2):
    pool = {1: (nn.MaxPool1d, nn.AvgPool1d), 2: (nn.MaxPool2d, nn.AvgPool2d)}[dim]
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return pool[0](3, stride, 1)
    if name == "avg_pool_3x3":
        return pool[1](3, stride, 1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else Shrink(C, C, affine, dim)
    if name.startswith("sep_conv_"):
        return separable(C, int(name[-1]), stride, affine, dim)
    if name.startswith("dil_conv_"):
        return dilated(C, int(name[-1]), stride, affine, dim)
    if name == "conv_7x1_1x7":
        return nn.Sequential(nn.ReLU(),
                             nn.Conv2d(C, C, (1, 7), (1, stride), (0, 3), bias=False),
                             nn.Conv2d(C, C, (7, 1), (stride, 1), (3, 0), bias=False),
                             nn.BatchNorm2d(C, affine=affine))
    raise KeyError(name)


def drop_samples(x, p):
    keep = 1.0 - p
    mask = torch.empty(x.shape[0], *([1] * (x.dim() - 1))).bernoulli_(keep)
    return x / keep * mask


class Cell(nn.Module):
    def __init__(self, pairs, concat, c_pp, c_p, C, reduction, reduction_prev, dim=2):
        super().__init__()
        self.preprocess0 = (Shrink(c_pp, C, True, dim) if reduction_prev
                            else relu_conv_bn(c_pp, C, True, dim))
        self.preprocess1 = relu_conv_bn(c_p, C, True, dim)
        self.pairs, self.concat = list(pairs), list(concat)
        self._ops = nn.ModuleList(
            make_op(op, C, 2 if reduction and j < 2 else 1, True, dim) for op, j in self.pairs)

    def forward(self, s0, s1, drop_prob):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(len(self.pairs) // 2):
            total = 0
            for k in (2 * i, 2 * i + 1):
                op, j = self._ops[k], self.pairs[k][1]
                h = op(states[j])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    h = drop_samples(h, drop_prob)
                total = total + h
            states.append(total)
        return torch.cat([states[k] for k in self.concat], 1)


class AuxHead(nn.Module):
    def __init__(self, C, num_classes, dim=2):
        super().__init__()
        Conv, BN = _conv(dim), _bn(dim)
        pool = nn.AvgPool1d if dim == 1 else nn.AvgPool2d
        self.features = nn.Sequential(
            nn.ReLU(), pool(5, 3, 0, count_include_pad=False), Conv(C, 128, 1, bias=False),
            BN(128), nn.ReLU(), Conv(128, 768, 2, bias=False), BN(768), nn.ReLU())
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def stem(in_channels, c, dim):
    return nn.Sequential(_conv(dim)(in_channels, c, 3, padding=1, bias=False), _bn(dim)(c))


def plan(layers, C, reduction_prev=False):
    """``(i, width, reduction, reduction_prev)`` of each cell: reductions at 1/3 and 2/3."""
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        C = C * 2 if reduction else C
        yield i, C, reduction, reduction_prev
        reduction_prev = reduction


class EvalNetwork(nn.Module):
    """DARTS evaluation network (NetworkCIFAR) for a parsed genotype."""

    def __init__(self, genotype, C, num_classes, layers, auxiliary, in_channels=3, dim=2):
        super().__init__()
        self.layers, self.auxiliary, self.drop_path_prob = layers, auxiliary, 0.0
        self.stem = stem(in_channels, 3 * C, dim)
        self.cells, c_aux, c_p = eval_cells(genotype, C, layers, 3 * C, False, dim)
        if auxiliary:
            self.auxiliary_head = AuxHead(c_aux, num_classes, dim)
        self.global_pooling = nn.AdaptiveAvgPool1d(1) if dim == 1 else nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x):
        s = self.stem(x)
        return run_cells(self, s, s)


def eval_cells(genotype, C, layers, c_in, reduction_prev, dim=2):
    """The cells of an evaluation network whose stems give ``c_in`` channels, the width of
    cell ``2 * layers // 3`` (read by the auxiliary head) and the last width."""
    c_pp = c_p = c_in
    cells = nn.ModuleList()
    for i, C_curr, reduction, prev in plan(layers, C, reduction_prev):
        kind = "reduce" if reduction else "normal"
        concat = list(getattr(genotype, kind + "_concat"))
        cells.append(Cell(getattr(genotype, kind), concat, c_pp, c_p, C_curr, reduction, prev,
                          dim))
        c_pp, c_p = c_p, len(concat) * C_curr
        if i == 2 * layers // 3:
            c_aux = c_p
    return cells, c_aux, c_p


def run_cells(net, s0, s1):
    """The forward pass of an evaluation network ``net`` from its stems' outputs."""
    aux = None
    for i, cell in enumerate(net.cells):
        s0, s1 = s1, cell(s0, s1, net.drop_path_prob)
        if i == 2 * net.layers // 3 and net.auxiliary and net.training:
            aux = net.auxiliary_head(s1)
    logits = net.classifier(net.global_pooling(s1).flatten(1))
    return (logits, aux) if net.auxiliary else logits


class MixedOp(nn.Module):
    def __init__(self, C, stride, dim=2):
        super().__init__()
        ops = []
        for name in PRIMITIVES:
            op = make_op(name, C, stride, False, dim)
            if "pool" in name:
                op = nn.Sequential(op, _bn(dim)(C, affine=False))
            ops.append(op)
        self._ops = nn.ModuleList(ops)

    def forward(self, x, w):
        return sum(w[k] * op(x) for k, op in enumerate(self._ops))


class SearchCell(nn.Module):
    def __init__(self, steps, multiplier, c_pp, c_p, C, reduction, reduction_prev, dim=2):
        super().__init__()
        self.reduction, self.steps, self.multiplier = reduction, steps, multiplier
        self.preprocess0 = (Shrink(c_pp, C, False, dim) if reduction_prev
                            else relu_conv_bn(c_pp, C, False, dim))
        self.preprocess1 = relu_conv_bn(c_p, C, False, dim)
        self._ops = nn.ModuleList(MixedOp(C, 2 if reduction and j < 2 else 1, dim)
                                  for i in range(steps) for j in range(2 + i))

    def forward(self, s0, s1, weights):
        states, k = [self.preprocess0(s0), self.preprocess1(s1)], 0
        for _ in range(self.steps):
            states.append(sum(self._ops[k + j](h, weights[k + j]) for j, h in enumerate(states)))
            k += len(states) - 1
        return torch.cat(states[-self.multiplier:], 1)


class SearchNetwork(nn.Module):
    """DARTS search super-network (model_search.Network) with softmax-relaxed alphas."""

    def __init__(self, C=16, num_classes=10, layers=8, steps=4, multiplier=4,
                 stem_multiplier=3, in_channels=3, dim=2):
        super().__init__()
        self.stem = stem(in_channels, stem_multiplier * C, dim)
        c_pp = c_p = stem_multiplier * C
        self.cells = nn.ModuleList()
        for _, C_curr, reduction, reduction_prev in plan(layers, C):
            self.cells.append(SearchCell(steps, multiplier, c_pp, c_p, C_curr, reduction,
                                         reduction_prev, dim))
            c_pp, c_p = c_p, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool1d(1) if dim == 1 else nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        edges = sum(2 + i for i in range(steps))
        self.alphas_normal = 1e-3 * torch.randn(edges, len(PRIMITIVES))
        self.alphas_reduce = 1e-3 * torch.randn(edges, len(PRIMITIVES))

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            alpha = self.alphas_reduce if cell.reduction else self.alphas_normal
            s0, s1 = s1, cell(s0, s1, torch.softmax(alpha, dim=-1))
        return self.classifier(self.global_pooling(s1).flatten(1))


def randomize(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial weights and BN statistics, so that eval-mode outputs test every module."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if t.dtype != torch.float32:
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=gen))
            elif name.endswith("running_mean") or name.endswith("bias"):
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
            elif t.dim() == 1:  # BN weight
                t.copy_(0.8 + 0.4 * torch.rand(t.shape, generator=gen))
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) / fan_in ** 0.5)


def load_by_position(ours: nn.Module, reference: nn.Module) -> None:
    """Copy ``reference``'s parameters and buffers into ``ours`` by position (shapes must
    agree entry by entry)."""
    mine, theirs = ours.state_dict(), reference.state_dict()
    assert len(mine) == len(theirs), (len(mine), len(theirs))
    for (k, a), (k2, b) in zip(mine.items(), theirs.items()):
        assert a.shape == b.shape, f"{k} {tuple(a.shape)} vs {k2} {tuple(b.shape)}"
    ours.load_state_dict(dict(zip(mine.keys(), theirs.values())))


def leaf_types(module: nn.Module) -> dict[str, int]:
    """Counts of leaf modules by their torch.nn class (subclasses mapped to their base).

    Identities are left out: the graph wires a cell's concat through identity edges, which
    the reference does with indexing.
    """
    counts: dict[str, int] = {}
    for m in module.modules():
        if len(list(m.children())) or isinstance(m, (nn.ModuleDict, nn.ParameterDict,
                                                      nn.Identity)):
            continue
        base = next((c for c in type(m).__mro__ if c.__module__.startswith("torch.nn")),
                    type(m))
        name = "Zero" if type(m).__name__ == "Zero" else base.__name__
        counts[name] = counts.get(name, 0) + 1
    return counts


def genotype_of(alphas_normal, alphas_reduce, steps=4, multiplier=4) -> str:
    """DARTS' discretization of relaxed alphas, as its paper defines it (section 2.4): per
    node, the two strongest inputs by their best non-zero op, each with that op; pairs in
    order of strength."""

    def cell(alpha):
        w = torch.softmax(alpha, dim=-1).tolist()
        pairs, k = [], 0
        for i in range(steps):
            rows = w[k:k + 2 + i]
            best = [max((p, o) for o, p in enumerate(r) if PRIMITIVES[o] != "none") for r in rows]
            for j in sorted(range(2 + i), key=lambda j: -best[j][0])[:2]:
                pairs.append((PRIMITIVES[best[j][1]], j))
            k += 2 + i
        return pairs

    concat = range(2 + steps - multiplier, steps + 2)
    return (f"Genotype(normal={cell(alphas_normal)}, normal_concat={concat}, "
            f"reduce={cell(alphas_reduce)}, reduce_concat={concat})")


class ImageNetEvalNetwork(nn.Module):
    """DARTS ImageNet network (NetworkImageNet) for a parsed genotype, 2-D only."""

    def __init__(self, genotype, C, num_classes, layers, auxiliary):
        super().__init__()
        self.layers, self.auxiliary, self.drop_path_prob = layers, auxiliary, 0.0
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2),
            nn.ReLU(), nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C))
        self.stem1 = nn.Sequential(nn.ReLU(), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
                                   nn.BatchNorm2d(C))
        # the first cell reads the stems as a cell after a reduction
        self.cells, c_aux, c_p = eval_cells(genotype, C, layers, C, True)
        if auxiliary:
            self.auxiliary_head = nn.Sequential(
                nn.ReLU(), nn.AvgPool2d(5, 2, 0, count_include_pad=False),
                nn.Conv2d(c_aux, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
                nn.Conv2d(128, 768, 2, bias=False), nn.ReLU(), nn.Flatten(1),
                nn.Linear(768, num_classes))
        self.global_pooling = nn.AvgPool2d(7)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x):
        s0 = self.stem0(x)
        return run_cells(self, s0, self.stem1(s0))
