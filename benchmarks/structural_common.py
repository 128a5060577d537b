"""The protocol shared by the structural-learning benchmarks at the neuron level.

Every method of ``benchmarks/structural_*.py`` is measured with the pieces below, so that
methods differ only in how they change the structure:

* **Data** -- :func:`load_data`: ``"mnist1d"`` (Greydanus 2020: 4000 training and 1000 test
  signals of length 40) or ``"digits"`` (scikit-learn's 1797 8x8 images), flattened to
  feature vectors and standardized with the statistics of the training part. ``data.fit``
  (train + val) trains the reported networks; ``data.train`` / ``data.val`` are for choosing
  settings; ``data.test`` is only reported, never used to choose anything.
* **Recipe** -- :data:`RECIPE`: optimizer, learning rate, schedule, batch size and the
  number of optimizer steps, one constant for every method (the *budget*). A method that
  trains a dense network before pruning spends part of the same steps on it.
* **Training** -- :func:`train`: a compiled ``supernet`` module trained for a fixed number
  of steps, with library policies (:class:`supernet.search.creation.RigL`,
  :class:`supernet.search.progressive.gradual.GradualMagnitude`, ...) driven through a
  :class:`supernet.search.base.SearchState` whose "epoch" is ``interval`` steps, and with
  optional per-step hooks. Every structural change goes through ``state.editor`` (a
  :class:`supernet.edits.Editor` bound to the module and its optimizer).
* **Networks** -- :func:`build`: a neuron-level MLP (``supernet.units.mlp``) at a density
  (uniform or Erdős–Rényi, :func:`supernet.units.sparsity.erk_densities`), compiled;
  :func:`dense_same_size`: the dense MLP of the same depth whose weight count is nearest a
  target; :func:`weight_count`.
* **Reporting** -- :func:`accuracy`, :func:`mean_std`, :func:`markdown_table`,
  :func:`machine_line`.

Stable API (other benchmarks import it): ``RECIPE``, ``Recipe``, ``SIZES``, ``load_data``,
``NeuronData``, ``build``, ``train``, ``TrainRun``, ``accuracy``, ``weight_count``,
``dense_same_size``, ``mean_std``, ``markdown_table``, ``machine_line``, ``set_threads``,
``quick``.

Examples:
    >>> set_threads()
    >>> data = load_data("digits")
    >>> g, net = build(data.sizes(), density=0.2, seed=0)
    >>> run = train(g, net, data.fit, steps=20, seed=0)
    >>> run.steps, weight_count(g) == round(0.2 * 64 * 100) + round(0.2 * 100 * 100) + 200
    (20, True)
    >>> 0.0 <= accuracy(net, data.test) <= 1.0
    True
    >>> dense_same_size([40, 100, 100, 10], 1500)
    [40, 21, 21, 10]
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F

from supernet import compile as compile_graph
from supernet.data import load_dataset
from supernet.data.base import flatten_features
from supernet.edits import Editor
from supernet.errors import ConfigError
from supernet.search.base import DiscretizationPolicy, SearchState
from supernet.train.retrain import accuracy as _accuracy
from supernet.train.training import cosine_lr
from supernet.units import mlp
from supernet.units.sparsity import erk_densities

__all__ = ["Recipe", "RECIPE", "SIZES", "NeuronData", "load_data", "build", "train",
           "TrainRun", "accuracy", "weight_count", "dense_same_size", "mean_std",
           "markdown_table", "machine_line", "set_threads", "quick"]

#: The MLP of the MNIST-1D paper (Greydanus 2020): 40-100-100-10, ReLU.
SIZES = (40, 100, 100, 10)


@dataclass(frozen=True)
class Recipe:
    """One training recipe: ``steps`` optimizer steps of ``batch_size`` samples drawn with
    replacement, ``optimizer`` (``"adam"`` or ``"adamw"``) at ``lr`` with ``weight_decay``,
    cosine decay to ``lr_min`` over all steps (``schedule="cosine"``) or constant."""

    optimizer: str = "adam"
    lr: float = 1e-2
    weight_decay: float = 0.0
    steps: int = 6000
    batch_size: int = 100
    schedule: str = "cosine"
    lr_min: float = 0.0
    standardize: bool = False

    def describe(self) -> str:
        wd = f", weight decay {self.weight_decay:g}" if self.weight_decay else ""
        return (f"{self.optimizer} lr {self.lr:g}{wd}, {self.schedule} schedule, batch "
                f"{self.batch_size}, {self.steps} steps"
                f"{', standardized inputs' if self.standardize else ''}")


#: The recipe of every method (chosen on the validation split of MNIST-1D, see
#: ``docs/results_neuron.md``). ``steps`` is the budget: every method makes this many
#: optimizer steps in all.
RECIPE = Recipe()


def set_threads(n: int = 1) -> None:
    """One thread (the benchmarks share the machine)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------- data
@dataclass
class NeuronData:
    """Flattened splits ``(x, y)`` of one data set.

    Attributes:
        train, val: the training part split for choosing settings.
        fit: ``train`` and ``val`` together: what reported networks train on.
        test: reported only.
    """

    name: str
    train: tuple
    val: tuple
    fit: tuple
    test: tuple
    n_in: int
    n_classes: int
    info: dict = field(default_factory=dict)

    def sizes(self, hidden: Sequence[int] = (100, 100)) -> list[int]:
        """``[n_in, *hidden, n_classes]``."""
        return [self.n_in, *hidden, self.n_classes]


def load_data(name: str, standardize: bool | None = None, seed: int = 0) -> NeuronData:
    """``"mnist1d"`` (val: 10% of the 4000 training signals) or ``"digits"`` (test 20%,
    val 20% of the rest), flattened; ``standardize`` (default: the recipe's) scales every
    feature by the mean and std of ``fit``. ``seed`` draws the validation split."""
    if name == "mnist1d":
        d = load_dataset("mnist1d", val_fraction=0.1, seed=seed)
    elif name == "digits":
        d = load_dataset("digits", seed=seed)
    else:
        raise ConfigError(f"structural benchmarks: data {name!r} is not 'mnist1d' or 'digits'")
    d = flatten_features(d)
    fit = (torch.cat([d.train[0], d.val[0]]), torch.cat([d.train[1], d.val[1]]))
    parts = {"train": d.train, "val": d.val, "fit": fit, "test": d.test}
    if RECIPE.standardize if standardize is None else standardize:
        mean, std = fit[0].mean(0), fit[0].std(0).clamp_min(1e-6)
        parts = {k: ((x - mean) / std, y) for k, (x, y) in parts.items()}
    info = {**d.info, "sizes": {k: len(v[1]) for k, v in parts.items()}}
    return NeuronData(name, parts["train"], parts["val"], parts["fit"], parts["test"],
                      d.shape[0], d.num_classes, info)


# ----------------------------------------------------------------------------- networks
def build(sizes: Sequence[int], density: float = 1.0, distribution: str = "uniform",
          seed: int = 0):
    """A compiled neuron-level MLP of ``sizes`` at overall ``density``: ``"uniform"`` (every
    block the same density) or ``"erk"`` (Erdős–Rényi). Returns ``(graph, module)``; the
    masks are drawn from ``seed`` and the weights from ``seed`` too (masked dense kernels,
    the fastest for blocks of this size)."""
    sizes = [int(s) for s in sizes]
    if distribution == "uniform":
        dens = density
    elif distribution == "erk":
        dens = erk_densities(list(zip(sizes[1:], sizes[:-1])), density)
    else:
        raise ConfigError(f"build: distribution is 'uniform' or 'erk', got {distribution!r}")
    g = mlp(sizes, density=dens, seed=seed)
    return g, compile_graph(g, seed=seed, kernel="dense")


def weight_count(graph) -> int:
    """Connections (scalar weights, biases not included) of a unit graph."""
    return int(sum(e["mask"].nnz for _, _, e in graph.nx.edges(data=True)
                   if e["kind"] != "identity"))


def _dense_weights(sizes) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def dense_same_size(sizes: Sequence[int], weights: int) -> list[int]:
    """The sizes of a dense MLP with the inputs, outputs and number of hidden layers of
    ``sizes``, every hidden layer of one width ``h``, whose weight count is nearest
    ``weights`` (ties: the narrower)."""
    n_in, n_out, depth = int(sizes[0]), int(sizes[-1]), len(sizes) - 2
    if depth < 1:
        raise ConfigError(f"dense_same_size: {list(sizes)} has no hidden layer to narrow")
    # weights(h) = (n_in + n_out) h + (depth - 1) h^2, increasing in h
    a, b = depth - 1, n_in + n_out
    h = weights / b if a == 0 else (-b + math.sqrt(b * b + 4 * a * weights)) / (2 * a)
    best = min((max(1, c) for c in (math.floor(h), math.ceil(h))),
               key=lambda c: (abs(_dense_weights([n_in, *[c] * depth, n_out]) - weights), c))
    return [n_in, *[best] * depth, n_out]


# ----------------------------------------------------------------------------- training
@dataclass
class TrainRun:
    """What :func:`train` did: ``steps`` made, ``losses`` (the mean training loss of every
    interval), the ``state`` policies saw (``state.editor.log`` holds every edit)."""

    steps: int
    losses: list
    state: SearchState


def _optimizer(module, recipe: Recipe):
    params = [p for p in module.parameters() if p.requires_grad]
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ConfigError(f"recipe: optimizer is 'adam' or 'adamw', got {recipe.optimizer!r}")


def train(graph, module, data: tuple, *, steps: int | None = None,
          recipe: Recipe = RECIPE, seed: int = 0, policies: Iterable = (),
          interval: int = 100, hooks: Iterable[Callable] = (), lr_steps: tuple | None = None,
          state: SearchState | None = None) -> TrainRun:
    """Train ``module`` (compiled from ``graph``) on ``data = (x, y)`` for ``steps`` steps
    (default: the recipe's).

    Args:
        policies: library policies (``on_search_start``, ``on_epoch_end``, ``finalize`` of
            a discretization policy) driven as by the search loop, with one "epoch" every
            ``interval`` steps: ``state.epoch`` counts the intervals done,
            ``state.epochs = steps // interval``.
        hooks: ``hook(state, step)`` after every optimizer step (``step`` counts the steps
            done); may apply edits through ``state.editor``.
        lr_steps: ``(offset, total)``: the learning rate of step ``t`` is the cosine's at
            ``offset + t`` of ``total`` -- a run continued in several calls follows one
            schedule. Default ``(0, steps)``.
        state: continue with the optimizer, editor and log of an earlier run's state
            (``TrainRun.state``) instead of fresh ones.
    """
    steps = recipe.steps if steps is None else int(steps)
    if steps < 0 or interval < 1:
        raise ConfigError(f"train: steps ({steps}) must be >= 0 and interval ({interval}) >= 1")
    x, y = data
    gen = torch.Generator().manual_seed(seed)
    if state is None:
        opt = _optimizer(module, recipe)
        editor = Editor(graph, module, opt, seed=seed)
        state = SearchState(graph, module, editor, weight_optimizer=opt)
    opt = state.weight_optimizer
    state.epoch, state.epochs = 0, max(1, steps // interval)
    score_gen = torch.Generator().manual_seed(seed + 1)

    def batches():  # training batches for the policies' scores: a fresh draw per pass
        order = torch.randperm(len(y), generator=score_gen)
        for i in range(0, len(y), recipe.batch_size):
            idx = order[i:i + recipe.batch_size]
            yield (x[idx],), {}, y[idx]

    state.train_batches = batches
    policies, hooks = list(policies), list(hooks)
    for p in policies:
        p.on_search_start(state)
    offset, total = lr_steps or (0, steps)
    losses, running = [], 0.0
    module.train()
    for t in range(steps):
        if recipe.schedule == "cosine":
            lr = cosine_lr(offset + t, max(total, 1), recipe.lr, recipe.lr_min)
            for group in opt.param_groups:
                group["lr"] = lr
        idx = torch.randint(0, len(y), (recipe.batch_size,), generator=gen)
        loss = F.cross_entropy(module(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += float(loss.detach())
        for hook in hooks:
            hook(state, t + 1)
        if (t + 1) % interval == 0:
            losses.append(running / interval)
            running = 0.0
            state.epoch += 1
            for p in policies:
                p.on_epoch_end(state)
            module.train()
    for p in policies:
        if isinstance(p, DiscretizationPolicy):
            p.finalize(state)
    return TrainRun(steps, losses, state)


def accuracy(module, data: tuple) -> float:
    """Top-1 accuracy of ``module`` on ``(x, y)`` in eval mode."""
    return _accuracy(module, data, batch_size=1024)


# ----------------------------------------------------------------------------- reporting
def mean_std(values: Sequence[float], scale: float = 100.0, digits: int = 1) -> str:
    """``"mean ± std"`` of ``values`` times ``scale`` (sample std, ``n - 1``; ``± 0`` for
    one value).

    Examples:
        >>> mean_std([0.60, 0.62, 0.64])
        '62.0 ± 2.0'
    """
    v = [float(x) * scale for x in values]
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{statistics.fmean(v):.{digits}f} ± {sd:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A markdown table (values printed with ``str``).

    Examples:
        >>> print(markdown_table(["a", "b"], [[1, "x"]]))
        | a | b |
        |---|---|
        | 1 | x |
    """
    lines = ["| " + " | ".join(map(str, header)) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def machine_line() -> str:
    """Threads, torch version and load average, printed above every table."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
            f"{os.cpu_count()} cores, load average {load}")


def quick(recipe: Recipe = RECIPE, steps: int = 200) -> Recipe:
    """``recipe`` with ``steps`` steps (smoke runs of the benchmarks)."""
    return replace(recipe, steps=steps)
