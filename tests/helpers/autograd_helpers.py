"""What autograd keeps for backward, measured in tests."""

import torch


def saved_bytes(fn):
    """``(fn(), bytes)``: the bytes of the distinct storages autograd keeps for backward
    while ``fn()`` runs."""
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(storages.values())
