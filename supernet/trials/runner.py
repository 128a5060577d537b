"""Run a multi-trial search: ask, evaluate, tell, until the budget is spent.

:func:`run_trials` drives a :class:`~supernet.trials.base.TrialStrategy` against
``evaluate(graph) -> dict`` (a tabular benchmark's query, a short training:
:mod:`supernet.trials.evaluate`). ``engine="local"`` (default) evaluates in this process,
one trial after the other. ``engine="ray"`` evaluates ``workers`` trials at a time as Ray
tasks (Moritz et al., "Ray: A Distributed Framework for Emerging AI Applications", OSDI
2018): on the cluster at ``address`` when given, else on a local Ray instance of
``workers`` CPUs that the run starts and shuts down; a new trial is asked each time a
result comes back (``ray.wait``), so the strategy always sees every result told so far.
The graph travels to a task as its node-link dict (:func:`supernet.codec.to_node_link`)
and ``evaluate`` is shipped once (``ray.put``), so it must pickle. Ray is an optional
extra: ``pip install supernet[ray]``.

Every evaluation runs after :func:`~supernet.train.training.seed_everything` of
``seed + trial.id`` (torch, random, numpy), on either engine, so a stochastic ``evaluate``
gives the same result for the same trial wherever it runs. The returned history lists the
trials in the order they were asked: with a strategy whose asks do not depend on results
(``random``) both engines give the same history.

Examples:
    >>> from supernet.spaces import create_space
    >>> from supernet.trials import trial_strategy
    >>> g = create_space("gnn", in_channels=4, hidden=8, num_classes=2, nodes=2)
    >>> def evaluate(graph):  # a toy objective: how many GCN layers the graph keeps
    ...     ops = [d["ops"][0] for _, _, d in graph.nx.edges(data=True)]
    ...     return {"val_accuracy": ops.count("gcn") / 2}
    >>> h = run_trials(trial_strategy("evolution", g, population=4, sample=2), evaluate, 30)
    >>> len(h), h.curve() == sorted(h.curve()), h.curve()[-1] == h.best().metrics["val_accuracy"]
    (30, True, True)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from supernet.codec import to_node_link
from supernet.errors import ConfigError, SearchError
from supernet.io import from_node_link
from supernet.train.training import seed_everything
from supernet.trials.base import Trial, TrialHistory, TrialStrategy

__all__ = ["ENGINES", "run_trials"]

#: The engines :func:`run_trials` accepts.
ENGINES = ("local", "ray")


def _positive(key: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"run_trials: {key} must be a positive int, got {value!r}")
    return value


def _evaluate(evaluate, graph, seed: int) -> tuple[dict, float]:
    seed_everything(seed)
    start = time.perf_counter()
    metrics = evaluate(graph)
    return metrics, time.perf_counter() - start


def _evaluate_node_link(evaluate, data: dict, seed: int) -> tuple[dict, float]:
    """A Ray task's body: the graph rebuilt from its node-link dict, then evaluated."""
    return _evaluate(evaluate, from_node_link(data, "trial graph"), seed)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("run_trials: engine='ray' needs Ray, which is not installed; "
                          "pip install supernet[ray] (or engine='local')") from None
    return ray


def run_trials(strategy: TrialStrategy, evaluate: Callable, budget: int, *,
               engine: str = "local", workers: int = 1, address: str | None = None,
               metric: str = "val_accuracy", on_trial: Callable | None = None,
               seed: int = 0) -> TrialHistory:
    """Ask ``budget`` trials of ``strategy``, evaluate each with ``evaluate(graph)`` and tell
    its metrics; returns their :class:`~supernet.trials.base.TrialHistory` (``seconds``:
    the run's wall time).

    Args:
        strategy: a :class:`~supernet.trials.base.TrialStrategy`; a fresh one takes
            ``metric`` as its objective.
        evaluate: ``evaluate(graph) -> dict`` of metrics, ``metric`` among them.
        budget: the number of trials.
        engine: ``"local"`` (in this process) or ``"ray"``.
        workers: trials evaluated at a time (``engine="ray"``).
        address: a running Ray cluster to use (``engine="ray"``; default: a local instance).
        metric: the objective key.
        on_trial: ``on_trial(trial)`` after each tell.
        seed: evaluations run seeded with ``seed + trial.id``.
    """
    if not isinstance(strategy, TrialStrategy):
        raise ConfigError(f"run_trials: strategy must be a TrialStrategy (e.g. "
                          f"supernet.trials.trial_strategy('random', graph)), got "
                          f"{type(strategy).__name__}")
    if not callable(evaluate):
        raise ConfigError(f"run_trials: evaluate must be callable as evaluate(graph) -> dict, "
                          f"got {type(evaluate).__name__}")
    budget, workers = _positive("budget", budget), _positive("workers", workers)
    if engine not in ENGINES:
        raise ConfigError(f"run_trials: unknown engine {engine!r}; accepted: {list(ENGINES)}")
    if engine == "local" and workers != 1:
        raise ConfigError(f"run_trials: engine='local' evaluates one trial at a time; "
                          f"workers={workers} needs engine='ray'")
    if address is not None and engine != "ray":
        raise ConfigError("run_trials: address is the Ray cluster of engine='ray'")
    if metric != strategy.metric:
        if len(strategy.history) or strategy.pending:
            raise SearchError(
                f"run_trials: the strategy optimizes {strategy.metric!r} and has trials "
                f"already; metric={metric!r} differs: build the strategy with metric={metric!r}"
            )
        strategy.metric = strategy.history.metric = metric
    done: list[Trial] = []

    def finish(trial, metrics, seconds):
        trial.seconds = seconds
        strategy.tell(trial, metrics)
        done.append(trial)
        if on_trial is not None:
            on_trial(trial)

    start = time.perf_counter()
    if engine == "local":
        for _ in range(budget):
            trial = strategy.ask()
            finish(trial, *_evaluate(evaluate, trial.graph, seed + trial.id))
    else:
        _run_ray(strategy, evaluate, budget, workers, address, seed, finish)
    history = TrialHistory(strategy.metric, strategy.mode, done)
    history.seconds = time.perf_counter() - start
    return history


def _run_ray(strategy, evaluate, budget, workers, address, seed, finish) -> None:
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        options = {"logging_level": logging.ERROR, "configure_logging": True}
        if address is None:
            options.update(num_cpus=workers, include_dashboard=False)
        ray.init(address=address, **options)
    task = ray.remote(num_cpus=1)(_evaluate_node_link)
    inflight: dict = {}
    asked = 0
    try:
        shipped = ray.put(evaluate)

        def submit():
            nonlocal asked
            trial = strategy.ask()
            asked += 1
            ref = task.remote(shipped, to_node_link(trial.graph), seed + trial.id)
            inflight[ref] = trial

        while asked < budget and len(inflight) < workers:
            submit()
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1)
            trial = inflight.pop(ready[0])
            finish(trial, *ray.get(ready[0]))
            if asked < budget:
                submit()
    finally:
        for ref in inflight:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
