"""Compiled pieces of a unit graph: one module per edge (a block of connections) and one per
node (its bias, normalization and activation).

Blocks keep the shapes of the graph: removing a unit really shrinks the tensors of its
producer and its consumers. Index buffers are derived from the graph, so they are not part
of the ``state_dict`` (only weights, biases, norms and gates are).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from supernet.compiler.kernels import SparsePattern, sparse_linear
from supernet.ops.activations import resolve_activation
from supernet.units.layout import Layout

__all__ = ["Block", "GridBlock", "SparseBlock", "IdentityBlock", "UnitParams", "InputSelect"]


def _buffer(module: nn.Module, name: str, value) -> None:
    t = value if value is None or torch.is_tensor(value) else torch.from_numpy(np.asarray(value))
    module.register_buffer(name, t, persistent=False)


class Block(nn.Module):
    """Base class of compiled edges.

    Attributes:
        mask: the graph mask the block was built for (masks are replaced, not mutated, by
            edits, so identity tells whether it changed).
        layout: the :class:`Layout` of its weights (``None`` for identity blocks).
        signature: the edge attributes its structure depends on.
    """

    storage_name: str | None = None

    def __init__(self, mask, signature: tuple, layout: Layout | None = None):
        super().__init__()
        self.mask = mask
        self.signature = signature
        self.layout = layout

    def storage(self) -> nn.Parameter | None:
        """The tensor holding the block's weights (``None`` for weightless blocks)."""
        return getattr(self, self.storage_name) if self.storage_name else None

    def effective(self, keep: torch.Tensor | None = None) -> torch.Tensor:
        """The dense weight the block applies (masked and gated)."""
        raise NotImplementedError

    def apply_weight(self, x: torch.Tensor, weight: torch.Tensor, bias=None) -> torch.Tensor:
        """The block's map with an explicit dense ``weight`` (used by gradient probes)."""
        raise NotImplementedError


class GridBlock(Block):
    """A dense or convolutional block whose weight is a dense tensor times a mask.

    The weight has the shape of ``nn.Linear`` ``(n_dst, n_src)`` or ``nn.Conv*d``
    ``(n_dst, n_src / groups, *kernel)``.
    """

    storage_name = "weight"

    def __init__(self, mask, signature, layout: Layout, weight: torch.Tensor, conv: dict | None):
        super().__init__(mask, signature, layout)
        self.conv = conv
        self.weight = nn.Parameter(weight)
        i, j, t = layout.coords()
        exists = layout.exists(i, j, t)
        _buffer(self, "mask_t", None if exists.all() else
                torch.from_numpy(exists).to(weight.dtype).view(weight.shape))
        _buffer(self, "entry_index", layout.entry_index())

    def effective(self, keep=None):
        w = self.weight
        if keep is not None:
            idx = self.entry_index
            vals = keep[:, None].expand(idx.shape) if idx.dim() == 2 else keep
            grid = w.new_zeros(w.numel()).index_put((idx.reshape(-1),), vals.reshape(-1))
            return w * grid.view(w.shape)
        return w if self.mask_t is None else w * self.mask_t

    def apply_weight(self, x, weight, bias=None):
        if self.conv is None:
            # a sparse block's output is feature-major (:mod:`supernet.compiler.kernels`); the
            # GEMM's rounding depends on the layout it reads on some CPUs, so read it row-major
            return F.linear(x.contiguous(), weight, bias)
        c = self.conv
        fn = F.conv1d if len(c["kernel"]) == 1 else F.conv2d
        return fn(x, weight, bias, c["stride"], c["padding"], c["dilation"], c["groups"])

    def forward(self, x, keep=None, bias=None):
        """The block's map; ``bias`` (the node's) is fused into the product, as
        ``nn.Linear``/``nn.Conv2d`` do."""
        return self.apply_weight(x, self.effective(keep), bias)


class SparseBlock(Block):
    """A dense-kind block stored as one value per connection (CSR order), for low densities."""

    storage_name = "values"

    def __init__(self, mask, signature, layout: Layout, values: torch.Tensor):
        super().__init__(mask, signature, layout)
        self.values = nn.Parameter(values)
        p = SparsePattern.build(mask.indptr, mask.indices, mask.shape)
        self.shape = p.shape
        for name in ("crow", "col", "crow_t", "col_t", "perm"):
            _buffer(self, name, getattr(p, name))
        rows = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))
        _buffer(self, "rows", rows.astype(np.int64))

    def pattern(self) -> SparsePattern:
        return SparsePattern(self.shape, self.crow, self.col, self.crow_t, self.col_t, self.perm)

    def effective(self, keep=None):
        v = self.values if keep is None else self.values * keep
        w = v.new_zeros(self.shape)
        return w.index_put((self.rows, self.col), v)

    def apply_weight(self, x, weight, bias=None):
        return F.linear(x, weight, bias)

    def forward(self, x, keep=None):
        v = self.values if keep is None else self.values * keep
        return sparse_linear(x, v, self.pattern())


class IdentityBlock(Block):
    """A weightless block: each source unit is added into the destination unit it is matched to."""

    def __init__(self, mask, signature):
        super().__init__(mask, signature)
        rows = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))
        self.n_dst = mask.shape[0]
        self.same = bool(mask.shape[0] == mask.shape[1] == mask.nnz
                         and np.array_equal(rows, mask.indices))
        _buffer(self, "dst_pos", rows.astype(np.int64))
        _buffer(self, "src_pos", mask.indices.astype(np.int64))

    def effective(self, keep=None):
        raise NotImplementedError("identity blocks have no weight")

    def forward(self, x, keep=None):
        if self.same and keep is None:
            return x
        y = x.index_select(1, self.src_pos)
        if keep is not None:
            y = y * keep.view((1, -1) + (1,) * (x.dim() - 2))
        out = x.new_zeros((x.shape[0], self.n_dst) + tuple(x.shape[2:]))
        return out.index_add(1, self.dst_pos, y)


class UnitParams(nn.Module):
    """A node's per-unit parameters: bias, batch norm (affine and running statistics), and
    its activation. ``units`` is the ids it was built for."""

    def __init__(self, units: np.ndarray, act: str, bias: torch.Tensor | None,
                 norm: dict | None, where: str = ""):
        super().__init__()
        self.units = units
        self.set_act(act, where)
        self.bias = None if bias is None else nn.Parameter(bias)
        self.has_norm = norm is not None
        if norm is not None:
            self.norm_weight = nn.Parameter(norm["weight"])
            self.norm_bias = nn.Parameter(norm["bias"])
            self.register_buffer("running_mean", norm["running_mean"])
            self.register_buffer("running_var", norm["running_var"])
            self.register_buffer("num_batches_tracked", norm["num_batches_tracked"])
        self.momentum, self.eps = 0.1, 1e-5

    def set_act(self, act: str, where: str = "") -> None:
        self.act_name = act
        self.act = resolve_activation(act, where)

    def forward(self, acc: torch.Tensor, fused: bool = False) -> torch.Tensor:
        """Bias (unless ``fused`` into the first block already), norm, activation."""
        if self.bias is not None and not fused:
            acc = acc + self.bias.view((1, -1) + (1,) * (acc.dim() - 2))
        if self.has_norm:
            if self.training:
                self.num_batches_tracked.add_(1)
            acc = F.batch_norm(acc, self.running_mean, self.running_var, self.norm_weight,
                               self.norm_bias, self.training, self.momentum, self.eps)
        return self.act(acc)


class InputSelect(nn.Module):
    """The features of a caller's tensor that an input group reads (all of them by default)."""

    def __init__(self, units: np.ndarray, width: int):
        super().__init__()
        self.units, self.width = units, width
        self.all = bool(len(units) == width and np.array_equal(units, np.arange(width)))
        _buffer(self, "index", units.astype(np.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.all else x.index_select(1, self.index)
