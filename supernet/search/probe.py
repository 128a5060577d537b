"""Scoring a super-network in the middle of a search without changing it.

Creation policies at the channel and neuron levels rank connections and units by gradients
or Taylor scores computed on a training batch. A forward pass in training mode updates the
batch-norm running statistics; :func:`probing` puts every buffer back afterwards, so that a
function-preserving growth really leaves the eval-mode outputs as they were.

Examples:
    >>> import torch
    >>> from supernet import compile
    >>> from supernet.units import add_group, add_input, connect
    >>> from supernet import Graph
    >>> g = Graph("channel"); add_input(g, "x", 2)
    >>> add_group(g, "c", 3, norm="batchnorm"); connect(g, "x", "c", "conv", kernel=1)
    >>> g.set_outputs(["c"]); net = compile(g)
    >>> with probing(net):
    ...     _ = net(torch.randn(4, 2, 5, 5))
    >>> net.unit_params("c").running_mean.tolist()
    [0.0, 0.0, 0.0]
"""

from __future__ import annotations

import contextlib
import itertools

import torch

from supernet.errors import SearchError
from supernet.search.relaxations.base import set_phase

__all__ = ["probing", "score_batch"]


@contextlib.contextmanager
def probing(module):
    """Run passes for scores in training mode (weights phase); buffers restored after."""
    saved = {n: b.detach().clone() for n, b in module.named_buffers()}
    was = module.training
    module.train()
    set_phase(module, "weights")
    try:
        yield module
    finally:
        module.train(was)
        with torch.no_grad():
            for n, b in module.named_buffers():
                if n in saved and saved[n].shape == b.shape:
                    b.copy_(saved[n])


def score_batch(state, index: int = 0):
    """Training batch ``index`` (modulo the number of batches) of a search, as the
    ``(inputs, targets)`` pair :mod:`supernet.search.scores` takes."""
    if state.train_batches is None:
        raise SearchError("this search state gives no training batches to score with")
    count = 0
    for i, batch in enumerate(state.train_batches()):
        count += 1
        if i == index:
            break
    else:
        if count == 0:
            raise SearchError("the training split is empty: nothing to score with")
        batch = next(itertools.islice(state.train_batches(), index % count, None))
    inputs, _, y = batch
    return (inputs[0] if len(inputs) == 1 else tuple(inputs)), y
