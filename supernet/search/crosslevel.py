"""One search across levels: the ops of a cell (layer level) and the widths of its calls
(channel level), decided in the same bilevel loop on one super-network.

The layer level decides, per gated edge, one candidate op (architecture logits ``α``, as in
DARTS). The channel level decides, per cell call ``k`` (a DARTS cell instance), how many
feature maps its tensors keep: one width ``W_k`` out of fractions of the call's ``C``
(``{0.25, 0.5, 0.75, 1.0}`` by default), with logits ``β_k`` of their own. The widths are
realised as in FBNetV2's channel masking (Wan et al., "FBNetV2: Differentiable Neural
Architecture Search for Spatial and Channel Dimensions", CVPR 2020, Sec. 3.1, eq. 4-5):
the super-network keeps its full width, and every tensor of call ``k`` is multiplied by the
mixed mask ``sum_j w_j m_j``, where ``m_j`` keeps the first ``W_kj`` channels and ``w`` is
the decision of the search's relaxation on ``β_k`` (softmax weights for DARTS, a Gumbel
sample for ``gumbel_softmax`` (soft Gumbel-softmax samples: the simplified SNAS relaxation,
not the single-level SNAS of ``snas_gumbel``) / GDAS; FBNetV2 uses Gumbel-softmax). Masks sit on the outputs of every op
that writes a tensor of the cell (so on the sum a node computes) and on the inner batch
norms of an op whose hidden width is its input's (the first block of a separable conv), so
that at a one-hot decision the masked super-network computes what the real network of
width ``W_k`` computes, channel for channel. (One exception: a factorized reduce at a
narrowed width keeps the first ``W`` channels of its two concatenated halves, where the
real one keeps ``W/2`` of each; the cost is the same.)

The architecture step updates ``α`` and ``β`` together, on the validation loss plus an
optional cost term on the expected cost of both levels
(:class:`~supernet.cost.crosslevel.CrossLevelCost`, exact and differentiable in ``α`` and
``β``): with a ``target``, ``λ |E[cost] / target - 1|`` (TuNAS' absolute reward, Bender et
al., "Can Weight Sharing Outperform Random Architecture Search?", CVPR 2020, Sec. 3.3);
without one, ``λ E[cost] / cost_full`` (the full-width super-network's cost under uniform
op probabilities). At the end (:class:`JointDiscretization`) the genotype is taken as the
layer level's choice space takes it (argmax ops, ``max_inputs`` edges per node), each call
keeps its most likely width, and :class:`~supernet.edits.NarrowCall` edits bind the widths:
the result is the network whose convolutions have those widths, whose cost
:func:`supernet.cost.cost` counts to what the cost model predicted.

Strategy ``"crosslevel"`` composes it: ``base`` is the relaxation of both levels
(``softmax``: DARTS, ``gumbel_softmax``: soft Gumbel-softmax samples, ``gumbel_max``: GDAS); the sampling
strategies of whole paths (SPOS' uniform paths and evolution) and the relaxations that
attach parameters of their own (PC-DARTS, ProxylessNAS) do not take width choices.

Examples:
    >>> from search_spaces import create_space
    >>> from supernet import compile
    >>> from supernet.search import create_strategy
    >>> g = create_space("darts1d", C=4, layers=3, steps=2, multiplier=2)
    >>> strategy = create_strategy("crosslevel", fractions=[0.5, 1.0])
    >>> strategy.prepare(g); g.meta["widths"]["calls"]
    {'cell0': [2, 4], 'cell1': [4, 8], 'cell2': [8, 16]}
    >>> net = compile(g); net.relaxation = strategy.relaxation; strategy.relaxation.attach(net)
    >>> [k for k in net.arch if k.startswith("width:")]
    ['width:cell0', 'width:cell1', 'width:cell2']

    A whole search: ``supernet.search.search(graph, data, strategy="crosslevel")`` (see
    ``docs/crosslevel.md``).
"""

from __future__ import annotations

import math
import weakref

import torch
import torch.nn as nn

from supernet.compiler.module import module_key
from supernet.compiler.plan import MergeStep
from supernet.cost.crosslevel import CrossLevelCost
from supernet.edits import NarrowCall, apply_edit
from supernet.errors import ConfigError, SearchError
from supernet.gates import Softmax
from supernet.lint import lint
from supernet.optim import remove_params
from supernet.search.base import DiscretizationPolicy, SearchState
from supernet.search.choices.base import choice_space
from supernet.search.relaxations import RELAXATIONS, GumbelMax, GumbelSoftmax
from supernet.search.relaxations.base import SearchRelaxation
from supernet.search.strategies import Strategy, build_part, register_strategy

__all__ = ["WidthGates", "JointDiscretization", "mark_widths", "width_spec", "width_key",
           "width_options", "check_fractions", "narrow", "DEFAULT_FRACTIONS"]

#: The width fractions of a call's ``C`` searched by default (FBNetV2-like).
DEFAULT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)

_BASES = (Softmax, GumbelSoftmax, GumbelMax)


def width_key(call: str) -> str:
    """The key of call ``call``'s width logits in ``module.arch``."""
    return "width:" + module_key(call)


def check_fractions(fractions, where: str = "widths.fractions") -> list[float]:
    """``fractions`` as a sorted list, or :class:`ConfigError` naming ``where``: each must
    be a number in ``(0, 1]``, and there must be at least one."""
    if isinstance(fractions, (int, float)) and not isinstance(fractions, bool):
        fractions = [fractions]
    try:
        values = list(fractions)
    except TypeError:
        raise ConfigError(f"{where}: expected a list of width fractions in (0, 1], got "
                          f"{fractions!r}") from None
    if not values:
        raise ConfigError(f"{where} is empty: give at least one width fraction in (0, 1], "
                          f"e.g. {list(DEFAULT_FRACTIONS)}")
    for i, f in enumerate(values):
        if (isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f)
                or not 0.0 < f <= 1.0):
            raise ConfigError(f"{where}[{i}]={f!r}: a width fraction must be a number in "
                              "(0, 1] (1.0 is the full width)")
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}: fractions {values} repeat a value; give each once")
    return sorted(float(f) for f in values)


def width_options(C: int, fractions, divisor: int = 2) -> list[int]:
    """The widths of a call of ``C`` channels: ``fraction * C`` rounded to a multiple of
    ``divisor`` (at least ``divisor``, at most ``C``), duplicates dropped.

    Examples:
        >>> width_options(16, [0.25, 0.5, 0.75, 1.0]), width_options(8, [0.1, 0.2], 2)
        ([4, 8, 12, 16], [2])
    """
    out = []
    for f in fractions:
        w = min(C, max(divisor, divisor * round(f * C / divisor)))
        if w not in out:
            out.append(w)
    return sorted(out)


def mark_widths(graph, fractions=DEFAULT_FRACTIONS, calls=None, symbol: str = "C",
                divisor: int = 2) -> dict:
    """Give the cell calls of ``graph`` width choices (in ``graph.meta["widths"]``).

    Args:
        fractions: fractions of each call's current ``symbol`` to choose from.
        calls: the call nodes to search (default: every top-level call binding ``symbol``).
        symbol: the width symbol of the templates (``channels="$C"``).
        divisor: widths are multiples of it (2 by default: a factorized reduce halves them).

    Returns ``{call: [widths]}``.
    """
    fractions = check_fractions(fractions)
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise ConfigError(f"widths.divisor must be a positive int, got {divisor!r}")
    found = [n for n, d in graph.nx.nodes(data=True)
             if d.get("kind") == "call" and symbol in (d.get("bind") or {})]
    # a template input declared with the symbol ties the call's width to its producers
    tied = {n for n in found if any(
        graph.cells[graph.nx.nodes[n]["cell"]].nx.nodes[i].get("channels") == "$" + symbol
        for i in graph.cells[graph.nx.nodes[n]["cell"]].inputs)}
    if calls is None:
        calls = [n for n in found if n not in tied]
    else:
        calls = list(calls)
        for k in calls:
            if k not in found:
                raise ConfigError(f"widths.calls: {k!r} is not a call node of {graph.name!r} "
                                  f"binding {symbol!r}; calls that do: {found}")
            if k in tied:
                raise ConfigError(f"widths.calls: {k!r}: its template's inputs declare "
                                  f"channels='${symbol}', so its width is its producers'; "
                                  "preprocess the inputs inside the cell (as DARTS' cells do)")
    if not calls:
        why = (f"the calls {sorted(tied)} take their inputs at channels='${symbol}' from "
               "outside the cell" if tied else f"no call node binds {symbol!r}")
        raise ConfigError(f"{graph.name}: no cell call can change its width alone: {why}; "
                          "width choices need cells that preprocess their own inputs (as "
                          "the darts and darts1d spaces' cells do)")
    table = {}
    for k in calls:
        C = graph.nx.nodes[k]["bind"][symbol]
        if isinstance(C, bool) or not isinstance(C, int) or C < divisor:
            raise ConfigError(f"{graph.name}: call {k!r} binds {symbol}={C!r}; width choices "
                              f"need an int of at least divisor={divisor}")
        table[k] = width_options(C, fractions, divisor)
    graph.set_meta(widths={"fractions": fractions, "symbol": symbol, "divisor": divisor,
                           "calls": table})
    return table


def width_spec(graph) -> dict | None:
    """``graph.meta["widths"]`` (set by :func:`mark_widths`), or ``None``."""
    return graph.meta.get("widths") or None


def narrow(graph, widths: dict, symbol: str = "C", editor=None) -> list:
    """Bind the widths ``{call: width}`` (e.g. ``graph.meta["width_choice"]`` of a search) on
    ``graph`` -- an evaluation network of the same calls, say -- by
    :class:`~supernet.edits.NarrowCall` edits (through ``editor`` when given, so a module
    follows); returns the edits applied.

    Examples:
        >>> from search_spaces.darts import network_graph
        >>> g = network_graph("DARTS_V2", C=8, layers=4, dim=1, in_channels=1)
        >>> [e.width for e in narrow(g, {"cell0": 4, "cell3": 16})], g.node("cell3")["bind"]
        ([4, 16], {'C': 16, 'stride0': 2})
    """
    done = []
    for call, w in widths.items():
        edit = NarrowCall(call, int(w), symbol)
        done.append(editor.apply(edit).edit if editor is not None
                    else apply_edit(graph, edit).edit)
    return done


class WidthGates(SearchRelaxation):
    """The relaxation of a cross-level search: ``base`` decides the op gates and the width
    gates alike; the width decisions mask the calls' channels (see the module docstring).

    Args:
        base: the relaxation of both levels (``Softmax``, ``GumbelSoftmax``, ``GumbelMax``).
        cost_weight: ``λ`` of the cost term (0: none).
        target: the cost aimed at (``None``: the cost is minimized, normalized).
        metric: ``"macs"`` or ``"params"``.
        input_shape: per-sample input shape for the cost (default: the inputs' declared).
    """

    def __init__(self, base=None, cost_weight: float = 0.0, target: float | None = None,
                 metric: str = "macs", input_shape=None):
        super().__init__()
        base = Softmax() if base is None else base
        if not isinstance(base, _BASES):
            raise ConfigError(
                f"strategy.base: {type(base).__name__} does not relax width choices; use "
                "softmax (DARTS), gumbel_softmax (soft Gumbel-softmax samples) or gumbel_max (GDAS)")
        if metric not in ("macs", "params"):
            raise ConfigError(f"strategy.metric={metric!r}: use 'macs' or 'params'")
        if not isinstance(cost_weight, (int, float)) or cost_weight < 0:
            raise ConfigError(f"strategy.cost_weight={cost_weight!r}: a number >= 0")
        if target is not None and not (isinstance(target, (int, float)) and target > 0):
            raise ConfigError(f"strategy.cost_target={target!r}: a positive cost, or null")
        self.base = base
        self.cost_weight, self.target, self.metric = float(cost_weight), target, metric
        self.input_shape = input_shape
        self.model: CrossLevelCost | None = None
        self._handles: list = []
        self._masks: dict = {}
        self._stairs: dict = {}
        self._scale = 1.0

    # ---------------------------------------------------------------- set up
    def attach(self, module) -> None:
        self.base.attach(module)
        spec = width_spec(module.graph)
        if spec is None:
            raise SearchError(f"{module.graph.name}: no width choices to search; call "
                              "supernet.search.crosslevel.mark_widths(graph) first")
        self.spec = spec
        self._module = weakref.ref(module)
        for call, options in spec["calls"].items():
            key = width_key(call)
            if key not in module.arch:
                value = 1e-3 * torch.randn(1, len(options))
                module.arch[key] = nn.Parameter(value.to(**module.placement()))
        self._install(module)
        if self.cost_weight > 0:
            model = self.cost_model(module)
            uniform = {g: torch.full((len(ops),), 1 / len(ops), dtype=torch.float64)
                       for g, ops in module.gates().items()}
            full = {k: torch.nn.functional.one_hot(torch.tensor(len(w) - 1), len(w)).double()
                    for k, w in spec["calls"].items()}
            self._scale = float(model.expected(uniform, full, self.metric))

    def cost_model(self, module) -> CrossLevelCost:
        """The cost model of ``module``'s graph and width choices (built once)."""
        if self.model is None:
            self.model = CrossLevelCost(module.graph, self.spec["calls"], self.spec["symbol"],
                                        self.input_shape)
        return self.model

    def _install(self, module) -> None:
        self._remove_hooks()
        g, symbol = module.graph, self.spec["symbol"]
        seen: dict[int, str] = {}
        for call, options in self.spec["calls"].items():
            d = g.nx.nodes[call]
            C = d["bind"][symbol]
            stairs = torch.zeros(len(options), C)
            for j, w in enumerate(options):
                stairs[j, :w] = 1.0
            self._stairs[call] = stairs
            self._masks.setdefault(call, None)
            template = g.cells[d["cell"]]
            scaled = {n for n, a in template.nx.nodes(data=True)
                      if a.get("channels") == "$" + symbol}
            cell = module.steps[module_key(call)].cell
            for step in cell.plan.steps:
                if not isinstance(step, MergeStep):
                    raise SearchError(f"{g.name}: call {call!r} nests call {step.node!r}; "
                                      "width choices mask flat cells only")
                for e in step.edges:
                    for op in e.ops:
                        if id(op) in seen and seen[id(op)] != call:
                            raise SearchError(
                                f"{g.name}: calls {seen[id(op)]!r} and {call!r} share "
                                "weights; give each call its own weights to search its width")
                        seen[id(op)] = call
                        if step.node in scaled:
                            self._hook(op, call)
                        if e.src in scaled:
                            bns = [m for m in op.modules()
                                   if isinstance(m, nn.modules.batchnorm._BatchNorm)]
                            for bn in bns[:-1]:  # hidden widths equal to the input's
                                if bn.num_features == C:
                                    self._hook(bn, call)
                if step.node in scaled and step.post is not None:
                    self._hook(step.post, call)
        self._handles.append(module.register_forward_pre_hook(self._given, with_kwargs=True))

    def _hook(self, m, call) -> None:
        def mask(_m, _inputs, y):
            v = self._masks.get(call)
            if v is None:
                return y
            return y * v.to(y.dtype).view(1, -1, *([1] * (y.dim() - 2)))

        self._handles.append(m.register_forward_hook(mask))

    def _given(self, module, args, kwargs):
        """A forward with ``gates=`` given runs their width decisions (the most likely width
        of a call they leave out)."""
        gates = kwargs.get("gates")
        if gates is None:
            return
        for call in self.spec["calls"]:
            key = width_key(call)
            if key in gates:
                self._set_mask(call, gates[key].weights)
            else:
                beta = module.arch[key].detach()
                self._set_mask(call, nn.functional.one_hot(beta.argmax(-1), beta.shape[-1])
                               .to(beta.dtype))

    def _set_mask(self, call, weights) -> None:
        stairs = self._stairs[call].to(weights.device, weights.dtype)
        self._masks[call] = (weights.reshape(1, -1) @ stairs).reshape(-1)

    def _remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def detach(self, module, optimizers=()) -> None:
        """Remove the masks and the width logits (from ``module.arch`` and ``optimizers``)."""
        self._remove_hooks()
        self._masks = {}
        gone = [module.arch[width_key(k)] for k in self.spec["calls"]
                if width_key(k) in module.arch]
        remove_params(optimizers, gone)
        for k in self.spec["calls"]:
            if width_key(k) in module.arch:
                del module.arch[width_key(k)]

    # ---------------------------------------------------------------- search hooks
    def forward(self, arch):
        decisions = self.base(arch)
        for call in self.spec["calls"]:
            self._set_mask(call, decisions[width_key(call)].weights)
        return decisions

    def decide(self, key, alpha):
        return self.base.decide(key, alpha)

    def set_phase(self, phase: str) -> None:
        super().set_phase(phase)
        _hook(self.base, "set_phase", phase)

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        _hook(self.base, "on_epoch_start", epoch, epochs)

    def after_arch_step(self, module) -> None:
        _hook(self.base, "after_arch_step", module)

    def probabilities(self, module) -> dict:
        fn = getattr(self.base, "probabilities", None)
        if fn is None:  # a plain relaxation: the softmax of the op gates
            return super().probabilities(module)
        return fn(module)

    def discrete(self, alpha):
        return self.base.discrete(alpha)

    def resync(self, module) -> None:
        self.base.resync(module)
        if self._handles:
            self._install(module)

    def width_probabilities(self, module) -> dict:
        """Call -> the probabilities of its widths (softmax of its logits)."""
        return {k: torch.softmax(module.arch[width_key(k)].reshape(-1), -1)
                for k in self.spec["calls"]}

    def width_choice(self, module) -> dict:
        """Call -> the width kept: its most likely one."""
        return {k: self.spec["calls"][k][int(module.arch[width_key(k)].detach().argmax())]
                for k in self.spec["calls"]}

    def expected_cost(self, module, metric: str | None = None) -> torch.Tensor:
        """``E[cost]`` of both levels under the current logits (differentiable)."""
        ops = {g: torch.softmax(module.arch[module_key(g)].reshape(-1), -1)
               for g in module.gates()}
        return self.cost_model(module).expected(ops, self.width_probabilities(module),
                                                metric or self.metric)

    def loss(self, module):
        base = self.base.loss(module)
        if self.cost_weight == 0:
            return base
        cost = self.expected_cost(module)
        if self.target is not None:
            term = (cost / float(self.target) - 1.0).abs()
        else:
            term = cost / self._scale
        return base + self.cost_weight * term.to(torch.float32)

    def extra_repr(self) -> str:
        return (f"cost_weight={self.cost_weight}, target={self.target}, "
                f"metric={self.metric!r}")


class JointDiscretization(DiscretizationPolicy):
    """Discretize both levels once, at the end: the layer level's choice (argmax op per
    edge, ``max_inputs`` edges per node), then the most likely width of every call, bound
    by :class:`~supernet.edits.NarrowCall` edits. ``graph.meta["width_choice"]`` records
    the widths."""

    def on_search_start(self, state: SearchState) -> None:
        _relaxation(state.module)

    def finalize(self, state: SearchState) -> None:
        graph, module, editor = state.graph, state.module, state.editor
        relax = _relaxation(module)
        widths = relax.width_choice(module)
        relax.detach(module, editor.optimizers)
        space = choice_space(graph, module)
        space.apply(editor, space.decide(module))
        symbol = relax.spec["symbol"]
        for call, w in widths.items():
            if graph.nx.nodes[call]["bind"][symbol] != w:
                editor.apply(NarrowCall(call, w, symbol))
        graph.set_meta(widths=None, width_choice=dict(widths))
        module.mark_synced()  # meta is not compiled
        module.relaxation = None
        lint(graph)
        space.check(module)


def _hook(relaxation, name: str, *args) -> None:
    """Call the optional search hook ``name`` of ``relaxation`` if it has one."""
    fn = getattr(relaxation, name, None)
    if fn is not None:
        fn(*args)


def _relaxation(module) -> WidthGates:
    relax = getattr(module, "relaxation", None)
    if not isinstance(relax, WidthGates):
        raise SearchError(
            f"{module.graph.name}: the cross-level discretization needs the WidthGates "
            f"relaxation, the module has {type(relax).__name__}; give the strategy's base "
            "relaxation as strategy.base, not strategy.relaxation")
    return relax


@register_strategy("crosslevel")
def _crosslevel(base="softmax", fractions=DEFAULT_FRACTIONS, calls=None, symbol: str = "C",
                divisor: int = 2, cost_weight: float = 0.0, cost_target: float | None = None,
                metric: str = "macs", input_shape=None):
    """Ops and widths searched in one loop: candidates and width fractions per cell."""
    fractions = check_fractions(fractions, "strategy.fractions")
    relax = WidthGates(build_part(RELAXATIONS, base, "strategy.base"), cost_weight,
                       cost_target, metric, input_shape)

    def prepare(graph) -> None:
        mark_widths(graph, fractions, calls, symbol, divisor)

    return Strategy("crosslevel", relax, JointDiscretization(), prepare=prepare,
                    levels=("layer",))
