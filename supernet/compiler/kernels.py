"""Compute kernels of the unit levels: a sparse linear map with its own backward, and pooling.

:func:`sparse_linear` multiplies by a CSR weight matrix whose values are a parameter. Its
backward returns the gradient of the input (a sparse product with the transposed matrix,
whose order is precomputed) and the gradient of the values *only at existing synapses*
(a sampled dense-dense product), so a sparse block never materializes a dense weight or a
dense weight gradient.

Examples:
    >>> import torch
    >>> from supernet.compiler.kernels import SparsePattern, sparse_linear
    >>> dense = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    >>> pattern = SparsePattern.from_dense(dense != 0)
    >>> values = dense[dense != 0].requires_grad_()
    >>> x = torch.ones(4, 3)
    >>> sparse_linear(x, values, pattern)[0]
    tensor([3., 3.], grad_fn=<SelectBackward0>)
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["SparsePattern", "sparse_linear", "pool"]

# CSR tensors are "beta" in torch, which says so once per process; the operations used
# here are stable on CPU, so take that one warning here, silently.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.sparse_csr_tensor(torch.tensor([0, 0]), torch.tensor([], dtype=torch.long),
                            torch.tensor([]), (1, 1))


class SparsePattern:
    """The fixed index structure of a sparse block (computed once per compile or edit).

    Attributes:
        shape: ``(n_dst, n_src)``.
        crow, col: CSR indices of the block (entries in row-major order).
        perm, crow_t, col_t: CSR of the transpose; ``values[perm]`` are its values.
    """

    __slots__ = ("shape", "crow", "col", "crow_t", "col_t", "perm")

    def __init__(self, shape, crow, col, crow_t, col_t, perm):
        self.shape = (int(shape[0]), int(shape[1]))
        self.crow, self.col, self.crow_t, self.col_t, self.perm = crow, col, crow_t, col_t, perm

    @classmethod
    def build(cls, indptr: np.ndarray, indices: np.ndarray, shape) -> "SparsePattern":
        """The pattern of a CSR structure (the transpose's order is computed here, once)."""
        import scipy.sparse as sp

        nnz = len(indices)
        t = sp.csr_array((np.arange(nnz, dtype=np.int64), indices, indptr), shape=shape).tocsc()
        t.sort_indices()
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))  # noqa: E731
        return cls(shape, as_t(indptr), as_t(indices), as_t(t.indptr), as_t(t.indices),
                   as_t(t.data))

    @classmethod
    def from_dense(cls, mask: torch.Tensor) -> "SparsePattern":
        import scipy.sparse as sp

        m = sp.csr_array(mask.numpy().astype(bool))
        m.sort_indices()
        return cls.build(m.indptr, m.indices, m.shape)

    @property
    def nnz(self) -> int:
        return len(self.col)

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(self.crow, self.col, values, self.shape,
                                       check_invariants=False)

    def transposed(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(self.crow_t, self.col_t, values[self.perm],
                                       (self.shape[1], self.shape[0]), check_invariants=False)


class _SparseLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, values, pattern):
        ctx.pattern = pattern
        ctx.save_for_backward(x, values)
        # (W @ x^T)^T keeps the result feature-major, so a following sparse block reads
        # its input transposed for free.
        return (pattern.matrix(values) @ x.t().contiguous()).t()

    @staticmethod
    def backward(ctx, gy):
        x, values = ctx.saved_tensors
        p = ctx.pattern
        gx = gv = None
        if ctx.needs_input_grad[0]:
            gx = (p.transposed(values) @ gy.t().contiguous()).t()
        if ctx.needs_input_grad[1]:
            # Gradient only at existing synapses: the sampled product gy^T x at the pattern.
            sampled = torch.sparse.sampled_addmm(p.matrix(values.detach()), gy.t(), x, beta=0.0)
            gv = sampled.values()
        return gx, gv, None


def sparse_linear(x: torch.Tensor, values: torch.Tensor, pattern: SparsePattern) -> torch.Tensor:
    """``x @ W^T`` for the sparse ``W`` with ``pattern`` and ``values``; ``x`` is ``(N, n_src)``."""
    if pattern.nnz == 0:
        return x.new_zeros(x.shape[0], pattern.shape[0]) + 0.0 * values.sum()
    return _SparseLinear.apply(x, values, pattern)


def pool(x: torch.Tensor, spec) -> torch.Tensor:
    """Pool ``x`` by an edge's ``pool`` attribute (see :mod:`supernet.schema`)."""
    if spec == "global_avg":
        return x.flatten(2).mean(-1)
    if spec == "global_max":
        return x.flatten(2).amax(-1)
    dim = x.dim() - 2
    if spec["kind"] == "max":
        fn = F.max_pool1d if dim == 1 else F.max_pool2d
        return fn(x, spec["kernel"], spec["stride"], spec["padding"])
    # Padding is excluded from averages, as in the layer-level avg_pool ops.
    fn = F.avg_pool1d if dim == 1 else F.avg_pool2d
    return fn(x, spec["kernel"], spec["stride"], spec["padding"], count_include_pad=False)
