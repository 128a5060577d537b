"""The bilevel search loop: weights on the train split, architecture parameters on the
validation split, policies at epoch ends. It knows nothing about levels: it sees
``module.weights()``, ``module.arch_parameters()``, ``module.relaxation`` and the policies.

Each step, as in DARTS: an architecture step on a validation batch (first order: the
gradient of ``L_val + relaxation.loss``; second order: the unrolled gradient of
:mod:`supernet.search.unrolled`), then a weight step on a train batch (SGD, cosine learning
rate, gradient clipping). A single-level strategy (``strategy.single_level``: SNAS) takes
one joint step per train batch instead (:func:`~supernet.search.steps.joint_step`); the
validation split then trains nothing and serves the epoch's ``eval_acc``. A strategy's
stabilizers (:mod:`supernet.search.stabilizers`: β-DARTS, DARTS-, SDARTS, ...) hook into
these steps: their losses join the architecture loss, their ``decisions`` rewrite the
mixing weights of each pass, and they may run passes before the weight step and change
the architecture gradient before it is stepped. Non-finite losses, gradients or
architecture parameters stop the search with a :class:`~supernet.errors.SearchError`, and so
does any NaN or inf in the state at the end of an epoch (weights, buffers, architecture
parameters, optimizer, relaxation, policy and stabilizer states, checked in one pass before
every checkpoint) or in the final module: a
non-finite state is never saved, the last finite checkpoint is kept as it was, and the
message says which it is (``the last finite state (the end of epoch 3) is
.../last.safetensors``), so that a rerun continues from it.

A strategy's budget (``strategy.target``, :mod:`supernet.search.budget`) is resolved
against the super-network before training (a target out of range fails here), kept as
``module.budget``, adds its resource term to the architecture loss, and is met by the
final decision; each epoch's record holds the expected cost (``"cost"``) and
:attr:`SearchResult.budget` the final one.

A search whose weights did not learn says so: when the train accuracy of the last epoch
stays below :func:`chance_margin` over chance (the accuracy of always answering the most
frequent class of the epoch's labels), :attr:`SearchResult.warnings` holds a message, also
issued as a :class:`SearchWarning`.

Examples:
    >>> import torch
    >>> from supernet import Graph
    >>> g = Graph("layer", name="toy"); g.add_input("x", channels=3)
    >>> g.add_node("h", channels=4); g.add_edge("x", "h", ["conv_3x3", "conv_1x1"])
    >>> g.add_node("p", channels=4); g.add_edge("h", "p", "global_avg_pool")
    >>> g.add_node("y", channels=2); g.add_edge("p", "y", "classifier")
    >>> g.set_outputs(["y"])
    >>> data = (torch.randn(16, 3, 8, 8), torch.randint(0, 2, (16,)))
    >>> result = BilevelSearch(g, data, config={"epochs": 1, "batch_size": 4}).run()
    >>> g.edge("x", "h")["ops"] in (["conv_3x3"], ["conv_1x1"]), len(result.history)
    (True, 1)
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from supernet.compiler import compile as compile_graph
from supernet.compiler.recompute import use_memory_mode
from supernet.distributed import Replicas
from supernet.edits import EditLog, Editor
from supernet.errors import ConfigError, SearchError
from supernet.io import from_node_link
from supernet.search.base import SearchState, SearchWarning
from supernet.search.budget import Budget, budget_of
from supernet.search.checkpoint import (
    STATE_KEYS,
    capture_search,
    load_checkpoint,
    restore_search,
    save_checkpoint,
    search_tensors,
)
from supernet.search.config import SearchConfig
from supernet.search.relaxations.base import gate_probabilities, set_phase, use_relaxation
from supernet.search.relaxations.tied import tie_relaxation
from supernet.search.stabilizers import StabilizerSet
from supernet.search.steps import arch_step, joint_step, weight_step
from supernet.search.strategies import Strategy, create_strategy
from supernet.train.checks import check_data
from supernet.train.data import (
    default_batch_fn,
    make_loader,
    module_dtype,
    resolve_device,
    split,
    to_device,
)
from supernet.train.training import (
    Meter,
    cosine_lr,
    default_loss,
    first_names,
    nonfinite_tensors,
    progress_bar,
    sample_count,
    seed_everything,
    top1_correct,
)

__all__ = ["BilevelSearch", "SearchResult", "SearchWarning", "search", "merge_config",
           "chance_margin", "learning_warning", "init_keep"]


@dataclass
class SearchResult:
    """What a search returns.

    Attributes:
        graph: the searched graph (discretized when the strategy has a discretization).
        module: its module (weights inherited from the search).
        history: per-epoch records.
        log: the edit log of every structural change made by the search.
        state: the final :class:`SearchState`.
        budget: with a budget, :meth:`CostModel.summary
            <supernet.search.budget.CostModel.summary>` of the final network (metric,
            target, full, cost, relative error, within tolerance), else ``None``.
        warnings: what the search found wrong with itself (weights left at chance).
    """

    graph: Any
    module: Any
    history: list
    log: EditLog
    state: SearchState
    extra: dict = field(default_factory=dict)
    budget: dict | None = None
    warnings: list = field(default_factory=list)


_STRATEGY = object()  # "take it from the strategy" (None means: none)


class BilevelSearch:
    """A search over ``graph``: bilevel training, then discretization.

    Args:
        graph: the super-network graph (edited in place by policies and discretization).
        train_data: a Dataset of ``(x, y)`` or a tuple of tensors ``(X, Y)``.
        val_data: the same for the architecture; ``None`` splits ``train_data`` at
            ``config.train_portion``.
        strategy: a registered strategy name, a mapping of
            :func:`~supernet.search.strategies.create_strategy` options (``name`` or the
            parts of a composed one: ``{"relaxation": "gumbel_max"}``), or a
            :class:`~supernet.search.strategies.Strategy` (relaxation + policies + settings).
        config: a :class:`SearchConfig` or a dict of its keys. The keys set in it (a dict's
            keys, a :class:`SearchConfig`'s :attr:`~SearchConfig.given` fields) win over the
            strategy's loop settings, which win over the defaults of :class:`SearchConfig`.
        module: the module compiled from ``graph`` (compiled here if ``None``).
        relaxation, discretization, creation, stabilizers: override the strategy's parts
            (``discretization=None``: keep the super-network at the end).
        loss_fn: ``loss_fn(output, target)`` (cross-entropy by default).
        batch_fn: ``batch_fn(batch) -> (inputs tuple, context dict, target)``.
        target: a :class:`~supernet.search.budget.Budget` or a mapping of its keys; overrides
            the strategy's (``strategy.target``).
        callbacks: ``f(state, record)`` called after every epoch with its history record
            (e.g. to log scalars to TensorBoard).

    Everything is checked before training starts: configuration keys and values, the
    strategy name, the data split, and two samples of each split run through the network
    (:func:`~supernet.train.checks.check_data`: input shapes, and class labels against its
    outputs). NumPy arrays are taken as tensors, and float64 inputs are converted to the
    module's dtype.
    """

    def __init__(self, graph, train_data, val_data=None, *, strategy="darts",
                 config: SearchConfig | dict | None = None, module=None, relaxation=None,
                 discretization=_STRATEGY, creation=_STRATEGY, stabilizers=_STRATEGY,
                 loss_fn: Callable | None = None,
                 batch_fn: Callable | None = None, callbacks: list[Callable] | None = None,
                 target=None, _checkpoint: dict | None = None):
        if isinstance(strategy, str):
            strategy = create_strategy(strategy)
        elif isinstance(strategy, dict):
            strategy = create_strategy(**strategy)
        elif strategy is not None and not isinstance(strategy, Strategy):
            raise ConfigError(f"strategy: expected a name, a mapping or a Strategy, got "
                              f"{type(strategy).__name__}")
        self.strategy = strategy
        self.config = merge_config(strategy, config)
        cfg = self.config
        self.single_level = bool(getattr(strategy, "single_level", False))
        if self.single_level and cfg.second_order:
            raise ConfigError(
                f"search config: second_order=True, but strategy {strategy.name!r} is single "
                "level (weights and architecture on the same batch, no validation step to "
                "unroll); leave second_order unset")
        self.loss_fn = loss_fn or default_loss
        self.callbacks = list(callbacks or [])
        self.replicas = Replicas.from_env()
        self.device = self.replicas.device(resolve_device(cfg.device, "search config: device"))
        if self.replicas.active and cfg.batch_size < 2 * self.replicas.world:
            raise ConfigError(
                f"search config: batch_size={cfg.batch_size}: a data-parallel run over "
                f"{self.replicas.world} processes splits each batch, and needs at least "
                f"{2 * self.replicas.world} samples per batch (2 per process)"
            )
        unpack = batch_fn or default_batch_fn
        self.batch_fn = lambda batch: to_device(unpack(batch), self.device)
        if _checkpoint is None:
            seed_everything(cfg.seed)  # the same seed gives the same search, from the init
        if _checkpoint is None and strategy is not None and strategy.prepare is not None:
            strategy.prepare(graph)
        self.graph = graph
        if module is None:
            module = compile_graph(graph)
        elif module.is_stale():
            module.recompile()
        self.module = module.to(self.device)
        use_memory_mode(module, cfg.memory, "search config: memory")
        if relaxation is None and strategy is not None:
            relaxation = strategy.relaxation
        # tied units (channel level: residual streams) take one decision per group
        relaxation = tie_relaxation(module, relaxation)
        if relaxation is not None:
            use_relaxation(module, relaxation)
        elif module.relaxation is not None:
            module.relaxation.attach(module)
        module.to(self.device)  # what the relaxation attached (e.g. PC-DARTS' edge weights)
        if discretization is _STRATEGY:
            discretization = strategy.discretization if strategy is not None else None
        if creation is _STRATEGY:
            creation = strategy.creation if strategy is not None else []
        self.discretization = discretization
        self.creation = list(creation or [])
        if stabilizers is _STRATEGY:
            stabilizers = getattr(strategy, "stabilizers", None) or []
        # their hooks: the loop's steps, and the decisions of the module's relaxation
        self.stabilizers = StabilizerSet(stabilizers or []).to(self.device)
        self.stabilizers.attach(module)
        done = _checkpoint is not None and _checkpoint.get("finalized")
        if _checkpoint is None and cfg.keep_init is not None:
            init_keep(module, cfg.keep_init)
        self._resolve_budget(graph, module, strategy, target, _checkpoint)
        if done:
            module.relaxation = None
        if not module.arch_parameters() and cfg.arch_update and not done:
            raise SearchError(
                f"{graph.name}: the graph has no gate (no edge with several candidate ops, no "
                "gated unit or connection); there is nothing to search"
            )
        # data: split, loaders, one batch checked against the graph
        self.train_set, self.val_set = split(train_data, val_data, cfg.train_portion,
                                             cfg.batch_size, module_dtype(module))
        if self.replicas.active and any(getattr(ds, "whole_batches", False)
                                        for ds in (self.train_set, self.val_set)):
            raise ConfigError(
                "data: a data set whose one item is a whole batch (a node-classification "
                f"graph) cannot be split across {self.replicas.world} processes; run it on one"
            )
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.train_loader = make_loader(self.train_set, cfg.batch_size, self.generator,
                                        cfg.num_workers, self.replicas)
        self.val_loader = make_loader(self.val_set, cfg.batch_size, self.generator,
                                      cfg.num_workers, self.replicas)
        self.loader_batch_size = cfg.batch_size
        val_name = "val data" if val_data is not None else "train data"  # a part of it
        for name, ds in (("train data", self.train_set), (val_name, self.val_set)):
            check_data(graph, module, ds, self.batch_fn, name, self.loss_fn)
        self.replicas.broadcast(module)  # once everything is checked: one start everywhere
        self.w_opt, self.a_opt = self._optimizers(module)
        opts = [o for o in (self.w_opt, self.a_opt) if o is not None]
        self.editor = Editor(graph, module, opts, log=EditLog(), seed=cfg.seed)
        self.state = SearchState(
            graph, module, self.editor, epoch=0, epochs=cfg.epochs, evaluate=self.evaluate,
            train=self.train_weights, rebuild=self.rebuild, config=cfg,
            train_batches=self._batches(self.train_set),
            val_batches=self._batches(self.val_set), weight_optimizer=self.w_opt,
            arch_optimizer=self.a_opt,
            total_steps=cfg.epochs * (min(len(self.train_loader), cfg.steps_per_epoch)
                                      if cfg.steps_per_epoch else len(self.train_loader)),
        )
        self.finalized = False
        self.started = False
        # (path, epoch, finalized) of the last finite checkpoint, what a stop keeps
        self.kept: tuple[str, int, bool] | None = None
        if _checkpoint is not None:
            self._restore(_checkpoint)

    def _resolve_budget(self, graph, module, strategy, target, ckpt) -> None:
        """Resolve the budget against the super-network (its full cost: from the first
        epoch's record when resuming) and set it on the module; fails before training."""
        budget = Budget.from_config(target, "target") if target is not None else (
            strategy.budget if strategy is not None else None)
        self.budget = budget
        if budget is None:
            module.budget = None
            return
        full = None
        for record in (ckpt or {}).get("history", [])[:1]:
            full = (record.get("cost") or {}).get("full")
        model = budget.resolve(graph, module, full=full)
        module.budget = model
        if not module.gate_groups() and not (ckpt or {}).get("finalized"):
            fit = getattr(strategy, "fit_budget", None)
            if fit is None:
                raise ConfigError(
                    f"{budget.where}: {graph.name} has no gate and strategy "
                    f"{getattr(strategy, 'name', None)!r} has no way to meet a size target; "
                    "gate the units or connections of the space, or use gradual_magnitude")
            fit(graph, model)

    def arch_regularizer(self, phase: str = "arch"):
        """``reg(module)`` added to the architecture loss of ``phase`` (``"arch"``, or
        ``"joint"`` in a single-level step): the relaxation's ``loss``, the budget's resource
        term and the stabilizers' losses (``None``: none of them)."""
        terms = []
        relax_loss = getattr(self.module.relaxation, "loss", None)
        if relax_loss is not None:
            terms.append(relax_loss)
        model = budget_of(self.module)
        if model is not None and model.budget.weight:
            terms.append(model.penalty)
        stabilizers = self.stabilizers
        if stabilizers.has("loss"):
            terms.append(lambda m: stabilizers.loss(m, phase))
        if not terms:
            return None
        if len(terms) == 1:
            return terms[0]

        def reg(m):
            out = terms[0](m)
            for t in terms[1:]:
                out = out + t(m)
            return out

        return reg

    # ------------------------------------------------------------------ public
    @classmethod
    def resume(cls, path: str, train_data, val_data=None, **kwargs) -> "BilevelSearch":
        """Continue the search saved at ``path`` (a checkpoint of :meth:`run`).

        The graph comes from the checkpoint; pass the same data, and the same custom parts
        (relaxation, policies, loss) if the search did not use a registered strategy.
        """
        ckpt = load_checkpoint(path)
        bad = nonfinite_tensors({k: ckpt.get(k) for k in STATE_KEYS})
        if bad:
            raise SearchError(
                f"{path}: the checkpoint holds NaN or inf ({first_names(bad)}), so no search can "
                "continue from it; resume from a finite checkpoint, or delete it to start over "
                "(earlier versions saved the state of a failed search)")
        graph = from_node_link(ckpt["graph"])
        spec = ckpt.get("strategy")
        if "strategy" not in kwargs:
            if spec is None:
                kwargs["strategy"] = None
            else:
                kwargs["strategy"] = create_strategy(spec[0], **spec[1])
        kwargs.setdefault("config", ckpt["config"])
        search = cls(graph, train_data, val_data, _checkpoint=ckpt, **kwargs)
        search.kept = (path, search.state.epoch, search.finalized)
        return search

    def run(self, until: int | None = None) -> SearchResult:
        """Search until epoch ``until`` (default: all epochs), then discretize.

        A checkpoint is written after every epoch when ``config.checkpoint_dir`` is set.
        The state is checked for NaN and inf at the end of every epoch and after the final
        discretization, checkpoint or not.

        Raises:
            SearchError: a loss, gradient or parameter became NaN or inf; the message names
                it, the epoch, and the last finite checkpoint (never overwritten by a
                non-finite state).
        """
        cfg, st = self.config, self.state
        stop_at = cfg.epochs if until is None else min(until, cfg.epochs)
        if not self.started and st.epoch == 0:
            for p in self._policies():
                p.on_search_start(st)
        self.started = True
        while st.epoch < stop_at and not st.stop:
            self._epoch()
            st.epoch += 1
            if not self._policies():
                self._checkpoint(f"at the end of epoch {st.epoch}")
                continue
            self._check_state(f"at the end of epoch {st.epoch}")  # before policies read it
            for p in self.creation:
                p.on_epoch_end(st)
            if self.discretization is not None:
                self.discretization.on_epoch_end(st)
            self._checkpoint(f"after the policies at the end of epoch {st.epoch}")
        if (st.epoch >= cfg.epochs or st.stop) and not self.finalized:
            if self.discretization is not None:
                self.discretization.finalize(st)
                if not self.module.arch_parameters():
                    self.module.relaxation = None
            self.finalized = True
            self.stabilizers.detach()  # the module runs as its relaxation decides
            self._checkpoint("after the final discretization")
        result = SearchResult(self.graph, self.module, st.history, self.editor.log, st)
        model = budget_of(self.module)
        if model is not None and self.finalized:
            result.budget = model.summary()
            if not result.budget["within"]:
                result.warnings.append(
                    f"{self.graph.name}: the final {model.budget.metric} "
                    f"{result.budget['cost']:.6g} is {100 * result.budget['relative_error']:+.2f}% "
                    f"off the target {model.target:.6g} (tolerance "
                    f"{100 * model.budget.tolerance:g}%)")
        message = learning_warning(st.history)
        if message is not None:
            result.warnings.append(f"{self.graph.name}: {message}")
        for w in result.warnings:
            warnings.warn(w, SearchWarning, stacklevel=2)
        return result

    def rebuild(self, graph) -> None:
        """Continue on ``graph`` (e.g. a deeper network, as P-DARTS stages): compile it with
        fresh weights, keep the relaxation and the logits of gates whose candidates are
        unchanged, start new optimizers, and keep logging into the same edit log."""
        old = self.module
        module = compile_graph(graph).to(self.device)
        use_memory_mode(module, self.config.memory, "search config: memory")
        with torch.no_grad():
            for k, p in module.arch.items():
                if (k in old.arch and old.arch[k].shape == p.shape
                        and old.gates().get(k) == module.gates().get(k)):
                    p.copy_(old.arch[k])
        use_relaxation(module, old.relaxation)
        module.to(self.device)
        self.replicas.broadcast(module)
        self.stabilizers.attach(module)
        self.graph, self.module = graph, module
        self.w_opt, self.a_opt = self._optimizers(module)
        opts = [o for o in (self.w_opt, self.a_opt) if o is not None]
        editor = Editor(graph, module, opts, log=self.editor.log)
        editor.rng = self.editor.rng  # the seeds of later edits continue the same sequence
        self.editor = editor
        st = self.state
        st.graph, st.module, st.editor = graph, module, editor
        st.weight_optimizer, st.arch_optimizer = self.w_opt, self.a_opt

    def _optimizers(self, module):
        cfg = self.config
        w_opt = torch.optim.SGD([p for p in module.weights() if p.requires_grad],
                                lr=cfg.w_lr, momentum=cfg.w_momentum,
                                weight_decay=cfg.w_weight_decay)
        arch = module.arch_parameters()
        a_opt = (torch.optim.Adam(arch, lr=cfg.arch_lr, betas=cfg.arch_betas,
                                  weight_decay=cfg.arch_weight_decay)
                 if arch and cfg.arch_update else None)
        return w_opt, a_opt

    def evaluate(self, gates=None, max_batches: int | None = None) -> float:
        """Accuracy on the validation split in eval mode (minus the mean loss when the
        outputs are not class scores). ``gates`` runs a chosen path."""
        m = self.module
        was = m.training
        m.eval()
        set_phase(m, "eval")
        self.replicas.average_buffers(m)
        meter = Meter()
        # data-parallel: each process measures its part of every batch
        loader = make_loader(self.val_set, self.config.batch_size, None, replicas=self.replicas)
        try:
            with torch.no_grad(), self.stabilizers.in_phase("eval"):
                for i, batch in enumerate(loader):
                    if max_batches is not None and i >= max_batches:
                        break
                    inputs, ctx, y = self.batch_fn(batch)
                    out = m(*inputs, gates=gates, **ctx)
                    meter.add(self.loss_fn(out, y), top1_correct(out, y), sample_count(y))
        finally:
            m.train(was)
        self.replicas.meter(meter)
        loss, acc = meter.result()
        if loss is None:
            return float("nan")
        return acc if acc is not None else -loss

    def train_weights(self, epochs: int = 1) -> None:
        """Weight-only training on the train split at the current learning rate."""
        self._sync_batch_size()
        for _ in range(epochs):
            self.module.train()
            for step, batch in enumerate(self.train_loader):
                if self.config.steps_per_epoch and step >= self.config.steps_per_epoch:
                    break
                self._weight_step(*self.batch_fn(batch), step=step)

    def _sync_batch_size(self) -> None:
        """Remake the loaders when a policy set another ``state.batch_size``."""
        want = self.state.batch_size or self.config.batch_size
        if want == self.loader_batch_size:
            return
        if not isinstance(want, int) or isinstance(want, bool) or want < 1:
            raise SearchError(f"state.batch_size={want!r}: a policy set a batch size that is "
                              "not an int >= 1")
        cfg = self.config
        self.train_loader = make_loader(self.train_set, want, self.generator, cfg.num_workers,
                                        self.replicas)
        self.val_loader = make_loader(self.val_set, want, self.generator, cfg.num_workers,
                                      self.replicas)
        self.loader_batch_size = want

    # ------------------------------------------------------------------ steps
    def _epoch(self):
        cfg, st, m = self.config, self.state, self.module
        e = st.epoch
        self._sync_batch_size()
        start, length = st.lr_cycle if st.lr_cycle is not None else (0, cfg.epochs)
        lr = cosine_lr(e - start, length, cfg.w_lr, cfg.w_lr_min)
        for g in self.w_opt.param_groups:
            g["lr"] = lr
        relax = m.relaxation
        if hasattr(relax, "on_epoch_start"):
            relax.on_epoch_start(e, cfg.epochs)
        self.stabilizers.on_epoch_start(e, cfg.epochs)
        m.drop_path_prob = cfg.drop_path_prob * e / cfg.epochs
        self._check_arch(e, 0, "at the start of the epoch")
        arch_on = (self.a_opt is not None and e >= cfg.warmup_epochs and st.arch_update
                   and bool(m.arch_parameters()))
        train_m, val_m = Meter(), Meter()
        labels = None  # class counts of the epoch's train labels: chance accuracy
        m.train()
        val_iter = _cycle(self.val_loader)
        steps = len(self.train_loader)
        if cfg.steps_per_epoch:
            steps = min(steps, cfg.steps_per_epoch)
        bar = progress_bar(cfg.progress and self.replicas.main, steps,
                           f"epoch {e + 1}/{cfg.epochs}")
        for step, batch in enumerate(self.train_loader):
            if step >= steps:
                break
            inputs, ctx, y = self.batch_fn(batch)
            if arch_on and self.single_level:  # one step of both, on the train batch
                train_m.add(*self._joint_step(inputs, ctx, y, step))
                labels = _count_labels(labels, y)
                if bar is not None:
                    bar.update(1)
                continue
            if arch_on:
                val_m.add(*self._arch_step(next(val_iter), (inputs, ctx, y), lr, step))
            train_m.add(*self._weight_step(inputs, ctx, y, step=step))
            st.step += 1
            for p in self._policies():
                p.on_step_end(st)
            labels = _count_labels(labels, y)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{train_m.loss / max(train_m.n, 1):.3f}")
        if bar is not None:
            bar.close()
        self.replicas.average_buffers(m)  # policies decide on the same module everywhere
        self.replicas.meter(train_m)
        self.replicas.meter(val_m)
        tl, ta = train_m.result()
        vl, va = val_m.result()
        record = {"epoch": e + 1, "lr": lr, "train_loss": tl, "train_acc": ta,
                  "val_loss": vl, "val_acc": va, "gates": _gate_record(m),
                  "candidates": _candidates(m)}
        if labels is not None and labels.sum() > 0:
            record["chance_acc"] = float(labels.max() / labels.sum())
            record["train_samples"] = int(labels.sum())
        tau = getattr(relax, "tau", None)
        if torch.is_tensor(tau):
            record["tau"] = float(tau)
        model = budget_of(m)
        if model is not None:
            with torch.no_grad():
                cost = float(model.expected(m)) if m.gate_groups() else model.cost()
            record["cost"] = {"metric": model.budget.metric, "expected": cost,
                              "target": model.target, "full": model.full}
        if cfg.eval_batches != 0:
            record["eval_acc"] = self.evaluate(max_batches=cfg.eval_batches)
        st.history.append(record)
        for fn in self.callbacks:
            fn(st, record)

    def _loss(self, batch):
        inputs, ctx, y = batch
        out = self.module(*inputs, **ctx)
        return self.loss_fn(out, y), out

    def _arch_step(self, val_batch, train_batch, lr, step):
        with self.replicas.synced_norms():  # batch norm: the whole batch's statistics
            return arch_step(self, val_batch, train_batch, lr, step)

    def _weight_step(self, inputs, ctx, y, step=0):
        with self.replicas.synced_norms():
            return weight_step(self, inputs, ctx, y, step)

    def _joint_step(self, inputs, ctx, y, step=0):
        with self.replicas.synced_norms():
            return joint_step(self, inputs, ctx, y, step)

    # ------------------------------------------------------------------ safety
    def _check_finite(self, loss, epoch, step, what):
        if not torch.isfinite(loss).all():
            self._fail(f"{what} is {float(loss.detach())} at epoch {epoch + 1}, step {step}")

    def _check_arch(self, epoch, step, when):
        arch = getattr(self.module, "arch", None)
        for k, p in arch.items() if arch is not None else []:
            if not torch.isfinite(p).all():
                self._fail(f"architecture parameter {k!r} is not finite {when} "
                           f"(epoch {epoch + 1})")

    def _check_state(self, when: str) -> None:
        """Stop the search if any tensor of its state (:func:`search_tensors`) is NaN or
        inf, naming the first ones and ``when``."""
        bad = nonfinite_tensors(search_tensors(self))
        if bad:
            self._fail(f"the search state holds NaN or inf {when}: {first_names(bad)}")

    def _fail(self, message: str):
        """Stop the search on a numerical fault, saying what is kept: nothing is written
        (the state at hand may be the fault's), the last finite checkpoint stays."""
        if not self.replicas.main:
            raise SearchError(f"search stopped: {message}; the main process reports what is "
                              "kept")
        raise SearchError(
            f"search stopped: {message}. {self._kept_message()}. Lower w_lr / arch_lr, enable "
            "grad_clip, or check the data and loss for NaN or inf"
        )

    def _kept_message(self) -> str:
        if self.kept is not None:
            path, epoch, finalized = self.kept
            at = "the finalized search" if finalized else f"the end of epoch {epoch}"
            return (f"The last finite state ({at}) is {path}; rerunning continues from it "
                    "(BilevelSearch.resume; supernet search resumes it when rerun, with "
                    "--resume if its settings change)")
        if self.config.checkpoint_dir:
            return (f"No finite state is kept: the search wrote no checkpoint into "
                    f"{self.config.checkpoint_dir} before the fault, so a rerun starts over")
        return ("No state is kept: checkpoints are off (set checkpoint_dir to keep the last "
                "finite state of every epoch)")

    # ------------------------------------------------------------------ checkpoints
    def _policies(self):
        return [*self.creation, *([self.discretization] if self.discretization else [])]

    def _checkpoint(self, when: str, name: str = "last.safetensors"):
        """Check the state (:meth:`_check_state`), then write it as checkpoint ``name`` when
        ``config.checkpoint_dir`` is set; a non-finite state stops the search unsaved."""
        self._check_state(when)
        if self.config.checkpoint_dir and self.replicas.main:
            path = os.path.join(self.config.checkpoint_dir, name)
            save_checkpoint(capture_search(self), path)
            self.kept = (path, self.state.epoch, self.finalized)

    def _restore(self, ckpt):
        restore_search(self, ckpt)

    def _batches(self, ds):
        def it():
            loader = torch.utils.data.DataLoader(ds, batch_size=self.config.batch_size,
                                                 shuffle=False)
            for batch in loader:
                yield self.batch_fn(batch)

        return it


def _gate_record(module, limit: int = 4096) -> dict:
    """Gate probabilities for the history; a large group (unit level) is summarized by
    its mean row."""
    out = {}
    for k, v in gate_probabilities(module).items():
        out[k] = v.tolist() if v.numel() <= limit else v.mean(0, keepdim=True).tolist()
    return out


def _candidates(module) -> dict:
    """Gate key -> candidate names, for modules that name them (``gates()``)."""
    fn = getattr(module, "gates", None)
    return {k: list(v) for k, v in fn().items()} if fn is not None else {}


def init_keep(module, p: float) -> None:
    """Start every keep/drop gate of a channel- or neuron-level ``module`` at keep
    probability ``p`` (``α_keep - α_drop = logit(p)``: ``softmax`` and FairDARTS'
    ``σ(α_keep)`` both give ``p``; the compiled noise of the logits is kept). Layer-level
    modules are left as they are."""
    groups = getattr(module, "gate_groups", None)
    if groups is None or getattr(module.graph, "level", None) not in ("channel", "neuron"):
        return
    shift = math.log(p / (1.0 - p))
    with torch.no_grad():
        for key in groups():
            a = module.arch[key]
            a[:, 0] = a[:, 1] + shift + (a[:, 0] - a[:, 1]).clamp(-1e-2, 1e-2)


def _count_labels(counts, y):
    """``counts`` with the class labels of ``y`` added (``None`` for outputs that are not
    class labels)."""
    if not torch.is_tensor(y) or y.dim() != 1 or y.dtype not in (torch.int64, torch.int32):
        return counts
    c = torch.bincount(y.detach().cpu().long().clamp_min(0))
    if counts is None:
        return c
    if len(c) > len(counts):
        counts, c = c, counts
    counts = counts.clone()
    counts[:len(c)] += c
    return counts


def chance_margin(chance: float, samples: int) -> float:
    """How far above ``chance`` a train accuracy must be to count as learned: a tenth of
    the way from chance to perfect (a network that removes less than 10% of the errors of
    always answering the most frequent class has not learned the task), and at least three
    standard deviations of a chance-level predictor's accuracy over ``samples``
    (``3 sqrt(p (1 - p) / n)``), so that noise alone does not pass."""
    return max(0.1 * (1.0 - chance), 3.0 * math.sqrt(chance * (1.0 - chance) / max(samples, 1)))


def learning_warning(history: list) -> str | None:
    """A message when the train accuracy of the last search epoch in ``history`` stays
    within :func:`chance_margin` of chance, else ``None``."""
    last = history[-1] if history else {}
    acc, chance = last.get("train_acc"), last.get("chance_acc")
    if acc is None or chance is None:
        return None
    margin = chance_margin(chance, last.get("train_samples", 0))
    if acc >= chance + margin:
        return None
    return (f"the search's train accuracy at its last epoch ({100 * acc:.1f}%) is below "
            f"chance + {100 * margin:.1f} points (chance {100 * chance:.1f}%): its weights "
            "did not learn the task, so its architecture decisions are noise; lower the "
            "temperature or the learning rates, train longer, or use another strategy")


def _cycle(loader):
    while True:
        for batch in loader:
            yield batch


def merge_config(strategy, config) -> SearchConfig:
    """The loop settings in force: those the caller set in ``config`` (a dict's keys, a
    :class:`SearchConfig`'s given fields) over ``strategy.config`` over the defaults of
    :class:`SearchConfig`. A set value that contradicts one the strategy owns fails."""
    base = dict(strategy.config) if strategy is not None else {}
    if isinstance(config, SearchConfig):
        given = config.given_dict()
    elif config is None:
        given = {}
    elif isinstance(config, dict):
        given = dict(config)
    else:
        raise ConfigError(f"config: expected a SearchConfig or a dict, got {type(config).__name__}")
    if strategy is not None:
        strategy.check_config(given)
    return SearchConfig.from_dict({**base, **given})


def search(graph, train_data, val_data=None, strategy="darts", **kwargs) -> SearchResult:
    """Run a whole search (see :class:`BilevelSearch`); returns its :class:`SearchResult`."""
    return BilevelSearch(graph, train_data, val_data, strategy=strategy, **kwargs).run()
