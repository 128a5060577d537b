"""Search checkpoints: everything needed to continue a killed search to the same end.

A checkpoint holds the graph (node-link, as edited so far), the module's state (weights,
architecture parameters, relaxation buffers and state), both optimizers keyed by parameter
name (so that they survive recompilation), policy and stabilizer states, the random
generators (torch, python, numpy, the loaders' shuffling), the edit log, the history and
the configuration.
It is one safetensors file (:func:`supernet.io.save_tensors`): the tensors in its data, the
rest as JSON in its header, with SHA-256 checksums of both; loading it runs no code, and a
damaged file fails naming it. It is written atomically: a crash mid-write keeps the previous
one. Checkpoints of older versions were pickles; they load only with ``trust_pickle=True``,
which runs code from the file.

A checkpoint holds a finite state only: the search checks every tensor it would save
(:func:`search_tensors`) before writing, and stops without overwriting the last good one
when a value is NaN or inf; :meth:`BilevelSearch.resume
<supernet.search.loop.BilevelSearch.resume>` refuses a file with such values (an older
version could write one).
"""

from __future__ import annotations

import random

import numpy as np
import torch

from supernet.edits import EditLog, edit_from_dict
from supernet.errors import SearchError, SerializationError
from supernet.io import is_pickle_file, load_tensors, save_tensors, to_node_link

__all__ = [
    "FORMAT",
    "STATE_KEYS",
    "capture_search",
    "load_checkpoint",
    "load_optimizer_state",
    "optimizer_state",
    "restore_search",
    "rng_state",
    "save_checkpoint",
    "search_tensors",
    "set_rng_state",
]

#: The entries of a checkpoint that hold the search's tensors (the rest are the graph,
#: random states, records).
STATE_KEYS = ("module", "w_opt", "a_opt", "policies")

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
        # the current GPU's: a data-parallel process draws on its own GPU only
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None,
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "generators": {k: g.get_state() for k, g in generators.items()},
    }


def set_rng_state(state: dict, generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if torch.is_tensor(cuda) and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda)
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    for k, g in generators.items():
        if k in state.get("generators", {}):
            g.set_state(state["generators"][k])


def save_checkpoint(data: dict, path: str) -> None:
    """Write a checkpoint dict atomically, as a tensor file (no pickle)."""
    save_tensors({"format": FORMAT, **data}, path, FORMAT)


def load_checkpoint(path: str, trust_pickle: bool = False) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; nothing in it runs.

    Args:
        trust_pickle: also read a pickle checkpoint of an older version. Unpickling runs
            code from the file: only for a checkpoint you wrote yourself.
    """
    if is_pickle_file(path):
        if not trust_pickle:
            raise SerializationError(
                f"{path}: a pickle checkpoint (an older version's format); loading it runs code "
                "from the file, so it is not loaded. If you wrote it yourself, pass "
                "trust_pickle=True, or convert it once with supernet.io.convert_pickle(path, "
                f"{FORMAT!r}, trust=True); otherwise delete it to start the search over")
        try:
            data = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # unpickling raises anything on bad bytes
            raise SerializationError(f"cannot read search checkpoint {path!r} "
                                     f"({type(exc).__name__}: {exc})") from exc
    else:
        try:
            data = load_tensors(path, FORMAT)
        except SerializationError as exc:
            raise SerializationError(f"{exc}; delete it to start the search over") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SerializationError(
            f"{path}: not a supernet search checkpoint (no format {FORMAT!r}); delete it to "
            "start the search over"
        )
    return data


def _policy_states(search) -> dict:
    disc = search.discretization
    stabilizers = getattr(search, "stabilizers", None)
    return {"creation": [p.state_dict() for p in search.creation],
            "discretization": disc.state_dict() if disc is not None else None,
            "stabilizers": stabilizers.state_dict() if stabilizers is not None else []}


def search_tensors(search) -> dict:
    """The state of ``search`` that a checkpoint saves, not copied: the module's state
    (weights, buffers, architecture parameters, the relaxation's state), both optimizers'
    states by parameter name, the policies' states. What
    :func:`~supernet.train.training.nonfinite_tensors` checks before every write."""
    names = {id(p): n for n, p in search.module.named_parameters()}

    def opt(o):
        if o is None:
            return None
        return {names.get(id(p), f"param {i}"): st
                for i, (p, st) in enumerate(o.state.items())}

    return {"module": search.module.state_dict(), "w_opt": opt(search.w_opt),
            "a_opt": opt(search.a_opt), "policies": _policy_states(search)}


def capture_search(search) -> dict:
    """Everything a :class:`~supernet.search.loop.BilevelSearch` needs to continue."""

    names = {id(p): n for n, p in search.module.named_parameters()}
    return {
        "graph": to_node_link(search.graph),
        "module": search.module.state_dict(),
        "w_opt": optimizer_state(search.w_opt, names),
        "a_opt": optimizer_state(search.a_opt, names),
        "policies": _policy_states(search),
        "rng": rng_state({"loader": search.generator}),
        "editor_rng": search.editor.rng.getstate(),
        "log": search.editor.log.to_list(),
        "epoch": search.state.epoch,
        "history": search.state.history,
        "config": search.config.to_dict(),
        "strategy": getattr(search.strategy, "spec", None),
        "finalized": search.finalized,
        "stop": search.state.stop,
        "arch_update": search.state.arch_update,
        "lr_cycle": search.state.lr_cycle,
        "batch_size": search.state.batch_size,
        "step": search.state.step,
        "relaxation": type(search.module.relaxation).__name__,
        # which run wrote it (a command-line run's identity, see supernet.rundir)
        "run": getattr(search, "run_identity", None),
    }


def restore_search(search, ckpt: dict) -> None:
    """Put the state of :func:`capture_search` back into a search built on its graph."""

    m = search.module
    want, have = ckpt.get("relaxation"), type(m.relaxation).__name__
    if want != have:
        raise SearchError(
            f"checkpoint: the search used relaxation {want}, this one has {have}; pass the "
            "same relaxation (or strategy) to resume"
        )
    m.load_state_dict(ckpt["module"])
    params = dict(m.named_parameters())
    load_optimizer_state(search.w_opt, ckpt["w_opt"], params)
    load_optimizer_state(search.a_opt, ckpt["a_opt"], params)
    pol = ckpt.get("policies") or {}
    for p, s in zip(search.creation, pol.get("creation", [])):
        p.load_state_dict(s)
    if search.discretization is not None and pol.get("discretization") is not None:
        search.discretization.load_state_dict(pol["discretization"])
    if getattr(search, "stabilizers", None) is not None:
        search.stabilizers.load_state_dict(pol.get("stabilizers"))
    search.editor.log = EditLog([edit_from_dict(d) for d in ckpt.get("log", [])])
    search.state.epoch = int(ckpt["epoch"])
    search.state.history = list(ckpt.get("history", []))
    search.state.stop = bool(ckpt.get("stop", False))
    search.state.arch_update = bool(ckpt.get("arch_update", True))
    search.state.lr_cycle = ckpt.get("lr_cycle")
    search.state.batch_size = ckpt.get("batch_size")
    search.state.step = int(ckpt.get("step", 0))
    search.finalized = bool(ckpt.get("finalized", False))
    search.run_identity = ckpt.get("run")
    search.started = search.state.epoch > 0
    set_rng_state(ckpt["rng"], {"loader": search.generator})
    if "editor_rng" in ckpt:  # seeds of the edits policies will make
        search.editor.rng.setstate(ckpt["editor_rng"])
