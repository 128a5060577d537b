"""Data-parallel searches and final training over processes started by ``torchrun``.

Every process holds a whole replica of the module. Each batch of ``batch_size`` samples
is drawn in the order a single process would draw it and split across the processes;
their gradients are combined with ``torch.distributed.all_reduce``, weighted by each
process's share of the samples, so that every replica takes the step a single process
would take on the whole batch (up to batch-norm statistics, computed per process as under
``DistributedDataParallel`` without ``SyncBatchNorm``, and the order of float sums). The
configuration means the same on one process as on eight.

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
import datetime
import os

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler, RandomSampler, Sampler, SequentialSampler

from supernet.errors import SearchError

__all__ = ["Replicas", "ShardedBatches"]


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
