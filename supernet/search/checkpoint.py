"""Search checkpoints: everything needed to continue a killed search to the same end.

A checkpoint holds the graph (node-link, as edited so far), the module's state (weights,
architecture parameters, relaxation buffers and state), both optimizers keyed by parameter
name (so that they survive recompilation), policy states, the random generators (torch,
python, numpy, the loaders' shuffling), the edit log, the history and the configuration.
It is written atomically (:func:`supernet.io.atomic_save`): a crash mid-write keeps the
previous one.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from ..errors import SerializationError
from ..io import atomic_save

__all__ = ["optimizer_state", "load_optimizer_state", "rng_state", "set_rng_state",
           "save_checkpoint", "load_checkpoint", "FORMAT"]

FORMAT = "supernet-search-checkpoint"


def optimizer_state(optimizer, names: dict[int, str]) -> dict | None:
    """``optimizer``'s state with parameters named (``names``: ``id(param) -> name``)."""
    if optimizer is None:
        return None
    groups, state = [], {}
    for g in optimizer.param_groups:
        hyper = {k: v for k, v in g.items() if k != "params"}
        groups.append({"hyper": hyper, "params": [names[id(p)] for p in g["params"]]})
        for p in g["params"]:
            if p in optimizer.state:
                state[names[id(p)]] = {k: (v.clone() if torch.is_tensor(v) else v)
                                       for k, v in optimizer.state[p].items()}
    return {"groups": groups, "state": state}


def load_optimizer_state(optimizer, saved: dict | None, params: dict[str, torch.Tensor]) -> None:
    """Restore :func:`optimizer_state` into ``optimizer`` (``params``: name -> parameter)."""
    if optimizer is None or saved is None:
        return
    missing = [n for g in saved["groups"] for n in g["params"] if n not in params]
    if missing:
        raise SerializationError(
            f"checkpoint: optimizer parameters {missing[:5]} are not in the module; was it "
            "compiled from the checkpoint's graph?"
        )
    optimizer.param_groups.clear()
    optimizer.state.clear()
    for g in saved["groups"]:
        group = dict(g["hyper"])
        group["params"] = [params[n] for n in g["params"]]
        optimizer.param_groups.append(group)
    for n, st in saved["state"].items():
        p = params[n]
        optimizer.state[p] = {k: (v.to(p.device) if torch.is_tensor(v) and v.dim() else v)
                              for k, v in st.items()}


def rng_state(generators: dict[str, torch.Generator]) -> dict:
    """The state of the torch, python and numpy generators and of ``generators``."""
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "generators": {k: g.get_state() for k, g in generators.items()},
    }


def set_rng_state(state: dict, generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    for k, g in generators.items():
        if k in state.get("generators", {}):
            g.set_state(state["generators"][k])


def save_checkpoint(data: dict, path: str) -> None:
    """Write a checkpoint dict atomically."""
    atomic_save({"format": FORMAT, **data}, path)


def load_checkpoint(path: str) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Checkpoints hold python objects (RNG states, configuration), so they are loaded with
    ``weights_only=False``: load only checkpoints you wrote.
    """
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise SerializationError(f"cannot read search checkpoint {path!r}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SerializationError(f"{path}: not a supernet search checkpoint")
    return data
