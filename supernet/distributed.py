"""Data-parallel searches and final training over processes started by ``torchrun``.

Every process holds a whole replica of the module. Each batch of ``batch_size`` samples
is drawn in the order a single process would draw it and split across the processes;
their gradients are combined with ``torch.distributed.all_reduce``, weighted by each
process's share of the samples, so that every replica takes the step a single process
would take on the whole batch (up to the order of float sums). While a process runs its
part of a batch (:meth:`Replicas.synced_norms`), every batch norm in training mode
normalizes with the statistics of the whole batch across the processes, back-propagates
through them exactly and updates its running statistics as one process would
(:func:`synced_batch_norm`). The configuration means the same on one process as on eight.

Why collectives and not the ``DistributedDataParallel`` wrapper: a search differentiates
the weights in one backward pass and the architecture parameters in another (second
order: at perturbed weights too), path sampling leaves most parameters unused at a step,
and edits change the set of parameters in the middle of the run; the wrapper's reducer is
bound to one parameter set and one backward per forward.

Decisions stay identical on every process: the architecture parameters receive the same
averaged gradients; every step starts from the main process's random generators, so that
Gumbel noise and sampled paths are the same everywhere (dropout masks, drawn per sample,
differ as the samples do); batch-norm statistics are averaged before anything is
evaluated; and the batches policies score with (``SearchState.train_batches``) are the
whole batches on every process. Only the main process writes checkpoints and results.

Launch::

    torchrun --nproc_per_node=2 -m supernet search --out runs/ddp

Examples:
    >>> Replicas().world, Replicas().active  # a single process
    (1, False)
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
from collections.abc import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.overrides import TorchFunctionMode
from torch.utils.data import BatchSampler, RandomSampler, Sampler, SequentialSampler

from supernet.errors import SearchError

__all__ = ["Replicas", "ShardedBatches", "SyncedNorms", "synced_batch_norm"]


class Replicas:
    """The processes of a data-parallel run (one process, inactive, when not launched by
    ``torchrun``). :meth:`from_env` joins the process group ``torchrun`` describes."""

    def __init__(self):
        on = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if on else 0
        self.world = dist.get_world_size() if on else 1
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))

    @classmethod
    def from_env(cls) -> "Replicas":
        """Join the process group of a ``torchrun`` launch (``WORLD_SIZE`` > 1) unless it
        is joined already: NCCL when there are GPUs, else Gloo."""
        if (int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available()
                and not dist.is_initialized()):
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            try:
                dist.init_process_group(backend)
                # leave the group before exit: its threads would otherwise abort the process
                atexit.register(_leave)
            except (RuntimeError, ValueError) as exc:
                raise SearchError(
                    f"cannot join the {backend} process group described by the environment "
                    f"(WORLD_SIZE={os.environ.get('WORLD_SIZE')}, "
                    f"MASTER_ADDR={os.environ.get('MASTER_ADDR')}, "
                    f"MASTER_PORT={os.environ.get('MASTER_PORT')}): {exc}; launch with torchrun"
                ) from exc
        return cls()

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Whether this process writes checkpoints, results and progress."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """``device``, or this process's own GPU (its local rank) when it names CUDA
        without an index in a data-parallel run."""
        if self.active and device.type == "cuda" and device.index is None:
            device = torch.device("cuda", self.local_rank % torch.cuda.device_count())
        if device.type == "cuda":
            torch.cuda.set_device(device)
        return device

    # ------------------------------------------------------------------ collectives
    def _comm_device(self, like: torch.device | None = None) -> torch.device:
        if dist.get_backend() == "nccl":
            return like if like is not None and like.type == "cuda" else torch.device(
                "cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def average_grads(self, params, loss: torch.Tensor, n: int) -> tuple[torch.Tensor, int]:
        """Replace the gradients of ``params`` by their sample-weighted mean over the
        processes (``n``: this process's samples; ``loss``: its mean loss); a parameter
        that no process gave a gradient keeps none. Returns the mean loss over all samples
        and their count (as a single process would see them)."""
        params = list(params)
        grads, loss, total = self.average([p.grad for p in params], params, loss, n)
        for p, g in zip(params, grads):
            p.grad = g
        return loss, total

    def average(self, grads, params, loss: torch.Tensor, n: int):
        """:meth:`average_grads` on gradients held apart: ``grads`` (one per parameter of
        ``params``, ``None`` for none) -> ``(averaged grads, mean loss, sample count)``."""
        if not self.active:
            return list(grads), loss.detach(), n
        params = list(params)
        device = self._comm_device(params[0].device if params else None)
        dtype = params[0].dtype if params else torch.float32
        parts = [(g.detach().reshape(-1) * n if g is not None
                  else torch.zeros(p.numel(), dtype=p.dtype, device=p.device)).to(device, dtype)
                 for p, g in zip(params, grads)]
        flags = torch.tensor([g is not None for g in grads], dtype=dtype, device=device)
        head = torch.stack([loss.detach().to(device, dtype) * n,
                            torch.tensor(float(n), dtype=dtype, device=device)])
        flat = torch.cat([*parts, flags, head])
        dist.all_reduce(flat)
        total = int(round(float(flat[-1])))
        sizes = [p.numel() for p in params]
        flags = flat[sum(sizes):sum(sizes) + len(params)].tolist()
        out, offset = [], 0
        for p, size, flag in zip(params, sizes, flags):
            out.append((flat[offset:offset + size] / total).view_as(p).to(p.device, p.dtype)
                       if flag > 0 else None)
            offset += size
        return out, flat[-2] / total, total

    def sync_rng(self) -> None:
        """Give every process the main process's torch generators (the CPU's and the current
        GPU's), so that the samples a step draws first (Gumbel noise, sampled paths) are the
        same everywhere although each process's part of the last step drew different
        dropout masks."""
        if not self.active:
            return
        states = [(torch.get_rng_state(), torch.set_rng_state)]
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            states.append((torch.cuda.get_rng_state(), torch.cuda.set_rng_state))
        for state, put in states:
            buf = state.to(self._comm_device())
            dist.broadcast(buf, 0)
            put(buf.cpu())

    def all_reduce(self, t: torch.Tensor) -> None:
        """Sum ``t`` over the processes, in place (through the backend's device)."""
        buf = t if t.device == self._comm_device(t.device) else t.to(self._comm_device(t.device))
        dist.all_reduce(buf)
        if buf is not t:
            t.copy_(buf)

    def synced_norms(self):
        """The context in which this process runs its part of a batch: every batch norm in
        training mode inside it normalizes with the whole batch's statistics
        (:class:`SyncedNorms`). Nothing, at no cost, on a single process. Every process must
        run the same batch norms in the same order inside it (forward and backward)."""
        return SyncedNorms(self.all_reduce) if self.active else contextlib.nullcontext()

    def sum(self, values) -> list[float]:
        """``values`` summed over the processes."""
        if not self.active:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64,
                         device=self._comm_device())
        dist.all_reduce(t)
        return t.tolist()

    def average_buffers(self, module) -> None:
        """Make the floating buffers (batch-norm running statistics) the mean over the
        processes, so that evaluations and decisions agree everywhere."""
        if not self.active:
            return
        bufs = [b for b in module.buffers() if b.is_floating_point()]
        if not bufs:
            return
        device = self._comm_device(bufs[0].device)
        flat = torch.cat([b.detach().reshape(-1).to(device, torch.float64) for b in bufs])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        with torch.no_grad():
            for b in bufs:
                b.copy_(flat[offset:offset + b.numel()].view_as(b))
                offset += b.numel()

    def broadcast(self, module) -> None:
        """Copy the main process's parameters and buffers to every process."""
        if not self.active:
            return
        with torch.no_grad():
            for t in (*module.parameters(), *module.buffers()):
                buf = t.detach().to(self._comm_device(t.device))
                dist.broadcast(buf, 0)
                if buf.data_ptr() != t.data_ptr():
                    t.copy_(buf)

    def meter(self, meter) -> None:
        """Sum a :class:`~supernet.train.training.Meter` over the processes, in place."""
        if not self.active:
            return
        meter.loss, meter.n, meter.correct, acc = self.sum(
            [meter.loss, meter.n, meter.correct, 0.0 if meter.has_acc else 1.0])
        meter.has_acc = acc == 0.0


class SyncedNorms(TorchFunctionMode):
    """A torch function mode in which every call of ``torch.nn.functional.batch_norm`` that
    uses batch statistics (``torch.nn.BatchNorm1d/2d/3d`` in training mode, affine or not,
    the unit-level node norms, whatever an edit builds) is :func:`synced_batch_norm` over the
    processes ``reduce`` sums across; every other call runs as it is.

    Examples:
        >>> bn = torch.nn.BatchNorm1d(2)
        >>> x = torch.randn(6, 2)
        >>> with SyncedNorms(lambda t: None):  # one process: the plain batch norm
        ...     y = bn(x)
        >>> torch.allclose(y, torch.nn.BatchNorm1d(2)(x), atol=1e-6)
        True
    """

    def __init__(self, reduce: Callable[[torch.Tensor], None]):
        super().__init__()
        self.reduce = reduce

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.batch_norm:
            a = _batch_norm_args(*args, **kwargs)
            if a["training"]:
                return synced_batch_norm(a["input"], a["running_mean"], a["running_var"],
                                         a["weight"], a["bias"], a["momentum"], a["eps"],
                                         self.reduce)
        return func(*args, **kwargs)


def _batch_norm_args(input, running_mean, running_var, weight=None, bias=None, training=False,
                     momentum=0.1, eps=1e-5):
    return locals()


def synced_batch_norm(x: torch.Tensor, running_mean: torch.Tensor | None,
                      running_var: torch.Tensor | None, weight: torch.Tensor | None,
                      bias: torch.Tensor | None, momentum: float, eps: float,
                      reduce: Callable[[torch.Tensor], None]) -> torch.Tensor:
    """Batch norm of this process's part ``x`` (``N x C x ...``) of a batch split across
    processes, with the statistics of the whole batch: ``reduce`` sums a tensor over the
    processes in place (:meth:`Replicas.all_reduce`).

    Forward sums each part's count, sum and sum of squares per channel (from the part's own
    mean and variance, combined in float64); the running statistics, when given, move by
    ``momentum`` towards the whole batch's mean and unbiased variance. Backward sums the
    parts' sums of ``dy`` and ``dy * x_hat``, each weighted by the part's share of the
    batch, so that the gradient this process returns, averaged over the processes with the
    weight of its share (:meth:`Replicas.average_grads`), is the gradient of the whole
    batch's loss. The gradients of ``weight`` and ``bias`` are this part's, as every
    parameter's gradient is before it is averaged."""
    if x.dim() < 2:
        raise ValueError(f"batch norm expects N x C x ... inputs, got shape {tuple(x.shape)}")
    return _SyncedBatchNorm.apply(x, weight, bias, running_mean, running_var, momentum, eps,
                                  reduce)


class _SyncedBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, reduce):
        c = x.shape[1]
        count = x.numel() // c if c else 0
        if count:  # this part's mean and (biased) variance, by torch's own kernel
            mean, var = torch.batch_norm_update_stats(x, None, None, 0.0)
            mean = mean.double()
            stats = torch.cat([mean, var.double().addcmul_(mean, mean), mean.new_ones(1)])
            stats *= count  # count x [mean, E[x^2]], count
        else:
            stats = torch.zeros(2 * c + 1, dtype=torch.float64, device=x.device)
        reduce(stats)
        total = stats[-1]  # kept on the device: no wait for the collective here
        if count <= 1 and float(total) <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {tuple(x.shape)} ({int(total)} in the whole batch)")
        stats = stats[:2 * c] / total
        mean = stats[:c]
        var = stats[c:].sub_(mean * mean).clamp_(min=0)
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
        if running_var is not None:  # unbiased: the whole batch's count
            running_var.mul_(1 - momentum).add_(
                (var * (momentum * total / (total - 1))).to(running_var.dtype))
        mean, var = mean.to(x.dtype), var.to(x.dtype)
        ctx.save_for_backward(x, weight, mean, var)
        ctx.reduce, ctx.eps, ctx.count, ctx.total = reduce, eps, count, total
        # the whole batch's statistics applied as fixed ones: torch's fused kernel
        return torch.batch_norm(x, weight, bias, mean, var, False, 0.0, eps, False)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, weight, mean, var = ctx.saved_tensors
        c = dy.shape[1]
        # with fixed statistics: dy * scale, sum(dy * x_hat) and sum(dy) in torch's kernel
        ones = weight if weight is not None else torch.ones(c, dtype=x.dtype, device=x.device)
        dx, sum_dy_xhat, sum_dy = torch.ops.aten.native_batch_norm_backward(
            dy, x, ones, mean, var, None, None, False, ctx.eps,
            [ctx.needs_input_grad[0], True, True])
        if ctx.needs_input_grad[0]:
            # the gradient of the whole batch's loss, each part's dy weighted by its share
            # (count / total) of it; this process's gradient is that divided by its own share
            sums = torch.cat([sum_dy, sum_dy_xhat]).double() * ctx.count
            ctx.reduce(sums)
            sums /= ctx.total * max(ctx.count, 1)
            scale = -torch.rsqrt(var.double() + ctx.eps)
            if weight is not None:
                scale = scale * weight.double()
            # dx -= scale * (mean(dy) + x_hat * mean(dy * x_hat)): one fused pass
            a, b = (scale * sums[c:]).to(x.dtype), (scale * sums[:c]).to(x.dtype)
            dx += torch.batch_norm(x, a, b, mean, var, False, 0.0, ctx.eps, False)
        dw = sum_dy_xhat if weight is not None and ctx.needs_input_grad[1] else None
        db = sum_dy if ctx.needs_input_grad[2] else None
        return dx, dw, db, None, None, None, None, None


def _leave() -> None:
    """Leave the process group together: a process that closes its connections while
    another still uses them makes that one abort."""
    if dist.is_available() and dist.is_initialized():
        try:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=60))
            else:
                dist.barrier()
        except RuntimeError:  # another process failed: leave anyway
            pass
        dist.destroy_process_group()


class ShardedBatches(Sampler):
    """The batches a single process would draw from ``size`` samples (shuffled by
    ``generator``, or in order), each split into ``world`` near-equal contiguous parts, of
    which this sampler yields part ``rank``.

    For training (``generator`` given), a last batch too small to give every process two
    samples (batch norm needs them) is dropped. In order (evaluation), every sample is
    measured: a process whose part of the last batch is empty skips it.
    """

    def __init__(self, size: int, batch_size: int, rank: int, world: int,
                 generator: torch.Generator | None = None):
        base = (RandomSampler(range(size), generator=generator) if generator is not None
                else SequentialSampler(range(size)))
        self.batches = BatchSampler(base, batch_size, drop_last=False)
        self.size, self.batch_size, self.rank, self.world = size, batch_size, rank, world
        self.drop = (generator is not None and world > 1
                     and 0 < size % batch_size < 2 * world)

    def __iter__(self):
        last = len(self.batches) - 1
        for i, batch in enumerate(self.batches):
            if i == last and self.drop:
                return
            part = np.array_split(np.asarray(batch), self.world)[self.rank].tolist()
            if part:
                yield part

    def __len__(self) -> int:
        if self.drop or self.size % self.batch_size == 0:
            return len(self.batches) - int(self.drop)
        last = self.size % self.batch_size  # the last batch gives this part samples?
        return len(self.batches) - int(len(np.array_split(np.arange(last), self.world)
                                           [self.rank]) == 0)
