"""Zero-cost proxies: scores of an untrained network that predict how well it will train.

A proxy reads a compiled module of any level (layer, channel, neuron, and the GNN modules
that take ``edge_index`` in the context) and, for most proxies, one batch in the search's
layout ``(inputs, context, target)`` (:func:`supernet.train.data.default_batch_fn`,
:func:`supernet.data.graphs.whole_graph_batch`; a plain ``(x, y)`` is accepted too). Every
proxy returns one float where **higher predicts better accuracy**; where a paper's raw
value is ranked the other way, the proxy says so and negates it.

* ``synflow`` -- synaptic flow, data-free (Tanaka et al., NeurIPS 2020; as a NAS proxy,
  Abdelfattah et al., ICLR 2021)
* ``grad_norm`` -- sum over layers of ``||dL/dθ||_2`` (Abdelfattah et al., ICLR 2021)
* ``snip`` -- ``Σ |θ ⊙ dL/dθ|`` (Lee et al., ICLR 2019; Abdelfattah et al., 2021)
* ``grasp`` -- ``Σ -θ ⊙ H g`` (Wang et al., ICLR 2020; Abdelfattah et al., 2021)
* ``fisher`` -- activation Fisher information (Theis et al., 2018; Turner et al., ICLR 2020)
* ``jacov`` -- correlation of input Jacobians (Mellor et al., arXiv 2006.04647v1, 2020)
* ``naswot`` -- log-determinant of the ReLU-code kernel (Mellor et al., ICML 2021)
* ``zico`` -- inverse coefficient of variation of gradients (Li et al., ICLR 2023)
* ``meco`` -- minimum eigenvalue of feature-map correlations (Jiang et al., NeurIPS 2023)
* ``params``, ``flops`` -- the cost model's parameter and MAC counts
  (:func:`supernet.cost.cost`)

Which layers count. The *weight layers* are the submodules that own a weight of at least
two dimensions (``nn.Conv*``, ``nn.Linear``, PyG's ``Linear`` inside message-passing layers)
and, at the channel and neuron levels, every compiled block's weight (the edges'
kernels); biases, norm scales and architecture parameters never count. A weight layer's
*activation* is its output; at the channel and neuron levels it is a node's summed input
(its blocks' outputs plus bias, before norm and activation), one channel per unit.

A proxy never changes the module: weights, buffers (batch-norm statistics), every
submodule's ``training`` flag, ``requires_grad`` and ``.grad`` are as before afterwards
(gradients are taken with :func:`torch.autograd.grad`, never accumulated). Proxies that
run data put the module in train mode, so batch norm normalizes with the batch's own
statistics (the running statistics it updates are restored). The random state is forked and
seeded (``seed=0``), so a proxy is deterministic and leaves the caller's generator alone.

Examples:
    >>> import torch
    >>> from supernet import compile
    >>> from supernet.units import mlp
    >>> from supernet.search import proxies
    >>> net = compile(mlp([4, 8, 3], seed=0), seed=0)
    >>> batch = ((torch.randn(16, 4),), {}, torch.randint(0, 3, (16,)))
    >>> s = proxies.score_all(net, batch, names=["snip", "naswot", "params"])
    >>> sorted(s), s["params"]
    (['naswot', 'params', 'snip'], 67.0)
    >>> proxies.score("snip", net, batch) == s["snip"]
    True
    >>> proxies.score("snp", net, batch)
    Traceback (most recent call last):
        ...
    supernet.errors.UnknownNameError: score: could not resolve proxy 'snp' among [...];
    did you mean 'snip'? register one with @supernet.search.proxies.register_proxy
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from supernet.compiler.blocks import Block, UnitParams
from supernet.cost import cost
from supernet.errors import SearchError, SupernetError
from supernet.registry import Registry
from supernet.train.training import IGNORE_INDEX, default_loss

__all__ = ["PROXIES", "Proxy", "register_proxy", "score", "score_all", "weight_layers"]


class Proxy(NamedTuple):
    """A registered proxy: ``fn(module, batch, **options) -> float`` and what it reads."""

    fn: Callable
    data: bool = True  # needs a batch
    target: bool = True  # needs the batch's target (a loss)


#: The proxies by name.
PROXIES: Registry[Proxy] = Registry(
    "proxy", hint="register one with @supernet.search.proxies.register_proxy")


def register_proxy(name: str, *, data: bool = True, target: bool = True,
                   override: bool = False):
    """Decorator: register ``fn(module, batch, **options) -> float`` as proxy ``name``.

    ``batch`` is ``(inputs, context, target)`` (``None`` for a data-free proxy called
    without one); ``data``: the proxy needs a batch; ``target``: it needs the target too.
    ``score`` forks and seeds the random state and restores the module around ``fn``.
    """

    def wrap(fn):
        PROXIES.register(name, Proxy(fn, data, target), override=override)
        return fn

    return wrap


def score(name: str, module: nn.Module, batch=None, *, loss_fn: Callable | None = None,
          seed: int = 0, **options) -> float:
    """The value of proxy ``name`` for ``module`` on ``batch`` (higher predicts better).

    Args:
        name: a registered proxy (:data:`PROXIES`).
        module: a compiled module (``supernet.compile(graph)``) of any level.
        batch: ``(inputs, context, target)``, or ``(x, y)``; optional for data-free
            proxies (``synflow``, ``params``, ``flops``).
        loss_fn: ``loss_fn(output, target)`` of the proxies that take a loss (default:
            the search's cross-entropy, :func:`supernet.train.training.default_loss`).
        seed: seeds the random state (dropout, sampled relaxations) for the call.
        **options: the proxy's own options (see each proxy).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the proxies).
        SearchError: the module or the batch cannot give this proxy what it needs.
    """
    proxy = PROXIES.resolve(name, "score")
    if not isinstance(module, nn.Module):
        raise SearchError(f"proxy {name!r}: scores a compiled nn.Module, got "
                          f"{type(module).__name__}")
    if batch is None and proxy.data:
        free = [n for n in PROXIES.list() if not PROXIES.resolve(n).data]
        raise SearchError(f"proxy {name!r} needs a batch (inputs, context, target) of data; "
                          f"the data-free proxies are {free}")
    batch = None if batch is None else _unpack(batch, name)
    if batch is not None and proxy.target and batch[2] is None:
        raise SearchError(f"proxy {name!r} takes the gradient of a loss: give the batch's "
                          "target (inputs, context, target)")
    accepted = [p for p in inspect.signature(proxy.fn).parameters if p not in ("module", "batch")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise SearchError(f"proxy {name!r}: unknown option(s) {unknown}; it takes "
                          f"{[p for p in accepted if p not in ('name', 'loss_fn')]}")
    if "loss_fn" in accepted:
        options["loss_fn"] = loss_fn or default_loss
    if "name" in accepted:
        options["name"] = name
    cuda = sorted({p.device.index or 0 for p in module.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=cuda), unchanged(module):
        torch.manual_seed(seed)
        return float(proxy.fn(module, batch, **options))


def score_all(module: nn.Module, batch, names=None, **options) -> dict[str, float]:
    """Every proxy of ``names`` (default: all registered) for ``module`` on ``batch``.

    ``options`` hold ``loss_fn`` and ``seed`` for all of them, and per proxy a dict of its
    own options under its name (``meco={"sample": 1}``). With ``batch=None`` only
    data-free proxies can be asked for.
    """
    names = list(PROXIES.list()) if names is None else list(names)
    for n in names:
        PROXIES.resolve(n, "score_all")
    own = {k: options.pop(k) for k in list(options) if k in PROXIES}
    common = {k: options.pop(k) for k in ("loss_fn", "seed") if k in options}
    if options:
        raise SearchError(f"score_all: unknown option(s) {sorted(options)}; give loss_fn, "
                          "seed, or a proxy's own options under its name")
    return {n: score(n, module, batch, **common, **own.get(n, {})) for n in names}


# ---------------------------------------------------------------------------- helpers
def _unpack(batch, name: str):
    """``(inputs tuple, context dict, target)`` from the search's layout or ``(x, y)``."""
    if (isinstance(batch, (tuple, list)) and len(batch) == 3
            and isinstance(batch[1], dict) and isinstance(batch[0], (tuple, list))):
        inputs, ctx, target = batch
    elif isinstance(batch, (tuple, list)) and len(batch) >= 2 and torch.is_tensor(batch[0]):
        inputs, ctx, target = tuple(batch[:-1]), {}, batch[-1]
    else:
        raise SearchError(f"proxy {name!r}: a batch is (inputs tuple, context dict, target) or "
                          f"(x, y) of tensors, got {type(batch).__name__}")
    if not inputs or not all(torch.is_tensor(x) for x in inputs):
        raise SearchError(f"proxy {name!r}: the batch's inputs are tensors, got "
                          f"{[type(x).__name__ for x in inputs]}")
    return tuple(inputs), dict(ctx), target


@contextlib.contextmanager
def unchanged(module: nn.Module):
    """Restore, on exit, ``module``'s weights (values, dtype, storage), buffers,
    ``requires_grad``, ``.grad`` and every submodule's ``training`` flag."""
    params = [(p, p.data, p.data.clone(), p.requires_grad, p.grad,
               None if p.grad is None else p.grad.data) for p in module.parameters()]
    bufs = [(m, k, b, b.clone()) for m in module.modules() for k, b in m._buffers.items()
            if b is not None]
    modes = [(m, m.training) for m in module.modules()]
    try:
        yield
    finally:
        with torch.no_grad():
            for p, data, copy, rg, grad, grad_data in params:
                data.copy_(copy)
                p.data = data
                p.requires_grad_(rg)
                if grad is not None:
                    grad.data = grad_data  # a dtype conversion converts .grad too
                p.grad = grad
            for m, k, b, copy in bufs:
                b.copy_(copy)
                m._buffers[k] = b
        for m, mode in modes:
            m.training = mode


def weight_layers(module: nn.Module) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """``(name, submodule, weight)`` of every weight layer of ``module`` (see the module
    docstring): conv, linear and compiled unit blocks; architecture parameters excluded."""
    arch_of = getattr(module, "arch_parameters", None)
    arch = {id(p) for p in arch_of()} if callable(arch_of) else set()
    out, seen = [], set()
    for name, m in module.named_modules():
        if isinstance(m, Block):
            w = m.storage()
        else:
            w = m._parameters.get("weight")
            if w is not None and w.dim() < 2:
                w = None
        if (w is None or id(w) in arch or id(w) in seen
                or isinstance(w, nn.parameter.UninitializedParameter)):
            continue
        seen.add(id(w))
        out.append((name, m, w))
    return out


def _weights(module, name: str) -> list[torch.Tensor]:
    layers = weight_layers(module)
    if not layers:
        raise SearchError(f"proxy {name!r}: module {type(module).__name__} has no weight layer "
                          "(conv, linear or compiled block) to score")
    for _, _, w in layers:
        w.requires_grad_(True)
    return [w for _, _, w in layers]


def _is_graph_data(ctx) -> bool:
    return "edge_index" in ctx


def _forward(module, inputs, ctx, name: str):
    try:
        return module(*inputs, **ctx)
    except SupernetError:
        raise
    except (RuntimeError, TypeError, ValueError) as exc:
        raise SearchError(f"proxy {name!r}: the module failed on inputs of shapes "
                          f"{[tuple(x.shape) for x in inputs]} and context {sorted(ctx)}: "
                          f"{str(exc).splitlines()[0]}") from exc


def _grads(loss, params, **kw) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True, **kw)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _loss_grads(module, batch, loss_fn, params, name, **kw):
    inputs, ctx, target = batch
    module.train()
    loss = loss_fn(_forward(module, inputs, ctx, name), target)
    return loss, _grads(loss, params, **kw)


@contextlib.contextmanager
def _hooks(module, pick: Callable, keep: Callable):
    """Forward hooks on the submodules ``pick(m)`` selects; ``keep(m, inputs, output)``
    returns what to record (or ``None``). Yields the records in call order."""
    found, handles = [], []

    def hook(m, args, out):
        value = keep(m, args, out)
        if value is not None:
            found.append(value)

    try:
        for m in module.modules():
            if pick(m):
                handles.append(m.register_forward_hook(hook))
        yield found
    finally:
        for h in handles:
            h.remove()


def _activations(module):
    """Hooks recording the activation of every weight layer (see the module docstring)."""
    units = any(isinstance(m, UnitParams) for m in module.modules())
    layers = {id(m) for _, m, _ in weight_layers(module)}
    if units:
        return _hooks(module, lambda m: isinstance(m, UnitParams), lambda m, a, o: a[0])
    return _hooks(module, lambda m: id(m) in layers,
                  lambda m, a, o: o if torch.is_tensor(o) else None)


def _relu_codes(module):
    """Hooks recording ``output > 0`` of every ReLU (``nn.ReLU`` modules; unit nodes whose
    activation is ``relu``), flattened per sample."""
    def pick(m):
        return isinstance(m, nn.ReLU) or (isinstance(m, UnitParams) and m.act_name == "relu")

    return _hooks(module, pick, lambda m, a, o: (o.detach() > 0).flatten(1).double())


# ---------------------------------------------------------------------------- proxies
@register_proxy("synflow", data=False, target=False)
def synflow(module, batch, input_shape=None, name="synflow"):
    """Synaptic flow (Tanaka et al., "Pruning neural networks without any data by
    iteratively conserving synaptic flow", NeurIPS 2020, Eq. 1 and Algorithm 1; as a NAS
    proxy Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021, Sec. 3).

    Every parameter (biases and norm scales too, architecture parameters not) is replaced
    by its absolute value (the linearization ``θ -> |θ|``), the module is run in double
    precision on an input of ones, and with ``R = Σ outputs`` the score is
    ``Σ_layers Σ |θ ⊙ ∂R/∂θ|`` over the weight layers (the absolute value, as the
    reference code takes it, only matters where an op has negative coefficients of its own, such as
    the scaled Laplacian of a Chebyshev layer: with positive weights and inputs every
    other product is positive already). The input is one sample of the
    batch's per-sample shape (without a batch: ``input_shape``, or the shapes the graph's
    inputs declare); for graph data (``edge_index`` in the context) the whole graph is the
    sample, so the input is ones of the node features' shape and the batch's edges are
    kept. Data-free otherwise: the values and signs of the inputs and of the weights do
    not change it.

    Batch norm is removed (every ``nn.BatchNorm``/``InstanceNorm`` runs as the identity, a
    unit node skips its norm), as the reference code scores a copy of the network built
    without batch norm: on a constant input a normalization would zero every activation.
    Dropout is off (eval mode). Higher is better, as in the paper.
    """
    if batch is not None:
        inputs, ctx, _ = batch
        graph_data = _is_graph_data(ctx)
        shapes = [tuple(x.shape) if graph_data else (1, *x.shape[1:]) for x in inputs]
        floats = [x.is_floating_point() for x in inputs]
    else:
        ctx, shapes = {}, _declared_shapes(module, input_shape, name)
        floats = [True] * len(shapes)
    if not all(floats):
        raise SearchError(f"proxy {name!r} feeds ones to every input; the batch has integer "
                          "inputs (token ids?) it cannot replace")
    layers = _weights(module, name)
    module.eval()
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
    units = [m for m in module.modules() if isinstance(m, UnitParams) and m.has_norm]
    arch_of = getattr(module, "arch_parameters", None)
    arch = {id(p) for p in arch_of()} if callable(arch_of) else set()
    with torch.no_grad():
        module.double()
        for p in module.parameters():
            if id(p) not in arch:  # a super-network's mixing weights stay as they are
                p.abs_()
    try:
        for m in norms:
            m.forward = _identity
        for m in units:
            m.has_norm = False
        ones = [torch.ones(s, dtype=torch.float64, device=layers[0].device) for s in shapes]
        out = _forward(module, ones, ctx, name)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        total = sum(o.sum() for o in outs)
        grads = _grads(total, layers)
    finally:
        for m in norms:
            del m.forward
        for m in units:
            m.has_norm = True
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(layers, grads)))


def _identity(x, *args, **kwargs):
    return x


def _declared_shapes(module, input_shape, name):
    if input_shape is not None:
        many = input_shape and isinstance(input_shape[0], (tuple, list))
        return [(1, *s) for s in (input_shape if many else [input_shape])]
    graph = getattr(module, "graph", None)
    shapes = []
    for n in getattr(graph, "inputs", []):
        d = graph.node(n)
        # a unit graph's input without a shape reads features of its width, as cost() does
        shape = d.get("shape") or ([d["width"]] if "width" in d else None)
        if shape is None:
            raise SearchError(
                f"proxy {name!r}: without a batch it needs the per-sample input shape; input "
                f"{n!r} of graph {graph.name!r} declares none: pass a batch or "
                "input_shape=(C, H, W)")
        shapes.append((1, *shape))
    if not shapes:
        raise SearchError(f"proxy {name!r}: without a batch it needs input_shape=... (a plain "
                          "module has no graph declaring its inputs)")
    return shapes


@register_proxy("grad_norm")
def grad_norm(module, batch, loss_fn, name="grad_norm"):
    """``Σ_layers ||∂L/∂θ_l||_2`` over the weight layers, on one batch in train mode
    (Abdelfattah et al., ICLR 2021, Sec. 3, "grad_norm"). Higher is better, as there."""
    params = _weights(module, name)
    _, grads = _loss_grads(module, batch, loss_fn, params, name)
    return float(sum(g.norm() for g in grads))


@register_proxy("snip")
def snip(module, batch, loss_fn, name="snip"):
    """Connection sensitivity summed over the weight layers, ``Σ |θ ⊙ ∂L/∂θ|`` (Lee et al.,
    "SNIP: Single-shot network pruning based on connection sensitivity", ICLR 2019, Eq. 6
    without its normalization; as a NAS proxy Abdelfattah et al., ICLR 2021). One batch,
    train mode. Higher is better, as in Abdelfattah et al. (unit-level pruning saliencies
    per connection are :func:`supernet.search.scores.snip`)."""
    params = _weights(module, name)
    _, grads = _loss_grads(module, batch, loss_fn, params, name)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(params, grads)))


@register_proxy("grasp")
def grasp(module, batch, loss_fn, name="grasp"):
    """Gradient signal preservation, ``Σ -θ ⊙ H g`` over the weight layers (Wang et al.,
    "Picking winning tickets before training by preserving gradient flow", ICLR 2020,
    Eq. 8; as a NAS proxy Abdelfattah et al., ICLR 2021). ``g = ∂L/∂θ`` and ``Hg`` the
    Hessian-gradient product by double back-propagation of ``gᵀ stop_grad(g)``, on one
    batch in train mode. Summed as Abdelfattah et al. sum it; higher is taken as better
    there (the paper prunes the weights of largest ``-θ ⊙ Hg`` first).
    """
    params = _weights(module, name)
    try:
        _, grads = _loss_grads(module, batch, loss_fn, params, name, create_graph=True)
        z = sum((g * g.detach()).sum() for g in grads if g.requires_grad)
        if not torch.is_tensor(z):
            return 0.0
        hg = _grads(z, params)
    except RuntimeError as exc:
        raise SearchError(f"proxy {name!r} needs second derivatives (double backward) of the "
                          f"module: {str(exc).splitlines()[0]}; compile unit graphs with "
                          "kernel='dense'") from exc
    return float(sum((-w.detach() * h).sum() for w, h in zip(params, hg)))


@register_proxy("fisher")
def fisher(module, batch, loss_fn, name="fisher"):
    """Fisher information of the activations (Theis et al., "Faster gaze prediction with
    dense networks and Fisher pruning", 2018, its pruning signal; Turner et al.,
    "BlockSwap", ICLR 2020; as a NAS proxy Abdelfattah et al., ICLR 2021).

    For every activation channel ``c`` of every weight layer,
    ``Δ_c = 0.5 · mean over samples n of (Σ_spatial a_nc ⊙ ∂L/∂a_nc)²``; the score is the
    sum over channels and layers. One batch, train mode; for graph data the samples are
    the nodes. Higher is better, as in Abdelfattah et al.
    """
    _weights(module, name)
    inputs, ctx, target = batch
    module.train()
    with _activations(module) as acts:
        loss = loss_fn(_forward(module, inputs, ctx, name), target)
    acts = [a for a in acts if a.requires_grad]
    if not acts:
        return 0.0
    total = 0.0
    for a, g in zip(acts, _grads(loss, acts)):
        s = (a * g).detach()
        s = s.flatten(2).sum(-1) if s.dim() > 2 else s.reshape(s.shape[0], -1)
        total += float(0.5 * s.pow(2).mean(0).sum())
    return total


@register_proxy("jacov", target=False)
def jacov(module, batch, name="jacov"):
    """Jacobian covariance (Mellor et al., "Neural Architecture Search without Training",
    arXiv:2006.04647v1, 2020, Sec. 3).

    ``J_n = ∂(Σ_k y_nk)/∂x_n``, the gradient of the summed outputs with respect to sample
    ``n``'s inputs (every floating input, flattened and joined), for the ``N`` samples of
    the batch in train mode; ``Σ_J`` their ``N x N`` correlation matrix with eigenvalues
    ``λ_i``; the score is ``-Σ_i (log(λ_i + k) + 1/(λ_i + k))``, ``k = 1e-5`` (v1):
    higher (less correlated Jacobians) is better. For graph data the samples are the nodes.
    A sample whose Jacobian is constant has no correlation: the score is then ``-inf``.
    """
    inputs, ctx, _ = batch
    xs = [x.detach().clone().requires_grad_(True) if x.is_floating_point() else x
          for x in inputs]
    leaves = [x for x in xs if x.requires_grad]
    if not leaves:
        raise SearchError(f"proxy {name!r} differentiates with respect to the inputs; the "
                          "batch has no floating-point input")
    if leaves[0].shape[0] < 2:
        raise SearchError(f"proxy {name!r} correlates samples: the batch needs at least 2")
    module.train()
    out = _forward(module, xs, ctx, name)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    grads = _grads(sum(o.sum() for o in outs), leaves)
    jac = torch.cat([g.reshape(g.shape[0], -1) for g in grads], 1).detach().cpu().double()
    jac = jac.numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jac)
    if not np.isfinite(corr).all():
        return float("-inf")
    lam = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(lam + k) + 1.0 / (lam + k)))


@register_proxy("naswot", target=False)
def naswot(module, batch, name="naswot"):
    """NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021,
    its score): ``log |K_H|``, with ``K_H[i, j] = N_A - d_H(c_i, c_j)`` the number of the
    ``N_A`` ReLUs on which samples ``i`` and ``j`` agree, ``c_i`` the binary code of sample
    ``i`` (which ReLUs are active, ``output > 0``, over every ReLU of the network: the
    ``nn.ReLU`` modules, and the units of nodes whose activation is ``relu``). One forward
    in train mode; for graph data the samples are the nodes (a ReLU whose output has
    another first dimension, e.g. after a readout, is left out). Higher is better, as in
    the paper (``-inf`` when two samples share a code: ``K_H`` is singular).
    """
    inputs, ctx, _ = batch
    module.train()
    with torch.no_grad(), _relu_codes(module) as codes:
        _forward(module, inputs, ctx, name)
    if not codes:
        raise SearchError(f"proxy {name!r} reads binary ReLU codes; module "
                          f"{type(module).__name__} has no ReLU (nn.ReLU, or unit nodes with "
                          "act='relu')")
    n = inputs[0].shape[0]
    codes = [c for c in codes if c.shape[0] == n]
    if not codes:
        raise SearchError(f"proxy {name!r}: no ReLU of the module sees the batch's {n} samples")
    c = torch.cat(codes, 1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(k)[1])


@register_proxy("zico")
def zico(module, batch, loss_fn, splits: int = 2, name="zico"):
    """ZiCo (Li et al., "ZiCo: Zero-shot NAS via inverse Coefficient of Variation on
    Gradients", ICLR 2023, its score):
    ``Σ_layers log(Σ_{θ in layer} E[|g_θ|] / std(g_θ))`` over the weight layers, mean and
    (population) standard deviation of each weight's gradient taken over mini-batches;
    weights whose gradient does not vary are left out of the sum, and a layer whose sum is
    zero adds nothing (as the reference code does).

    The paper draws several mini-batches; from the one batch given, its samples are split
    into ``splits`` (default 2) equal parts, each one mini-batch (for graph data, the
    labelled nodes are split, each part's loss reading only its nodes). Train mode, so
    batch norm uses each part's statistics. Higher is better, as in the paper.
    """
    params = _weights(module, name)
    inputs, ctx, target = batch
    if splits < 2:
        raise SearchError(f"proxy {name!r}: needs splits >= 2 mini-batches, got {splits}")
    per_split = []
    for part in _split(inputs, ctx, target, splits, name):
        _, grads = _loss_grads(module, part, loss_fn, params, name)
        per_split.append([g.detach().reshape(-1).double() for g in grads])
    total = 0.0
    for layer in zip(*per_split):
        g = torch.stack(layer)
        std = g.std(0, unbiased=False)
        nz = std > 0
        s = float((g.abs().mean(0)[nz] / std[nz]).sum())
        if s > 0:
            total += float(np.log(s))
    return total


def _split(inputs, ctx, target, splits, name):
    if _is_graph_data(ctx):
        if not torch.is_tensor(target) or target.dim() != 1:
            raise SearchError(f"proxy {name!r}: splits graph data by its labelled nodes; the "
                              "target is one class per node")
        labelled = torch.nonzero(target != IGNORE_INDEX).flatten()
        if len(labelled) < splits:
            raise SearchError(f"proxy {name!r}: {len(labelled)} labelled node(s) cannot be "
                              f"split into {splits} mini-batches")
        for idx in labelled.chunk(splits):
            t = torch.full_like(target, IGNORE_INDEX)
            t[idx] = target[idx]
            yield inputs, ctx, t
        return
    n = inputs[0].shape[0]
    if n < 2 * splits:
        raise SearchError(f"proxy {name!r}: a batch of {n} sample(s) cannot be split into "
                          f"{splits} mini-batches of at least 2 (batch norm needs 2)")
    for idx in torch.arange(n).chunk(splits):
        t = target[idx] if torch.is_tensor(target) else target
        yield tuple(x[idx] for x in inputs), ctx, t


@register_proxy("meco", target=False)
def meco(module, batch, sample: int = 0, name="meco"):
    """MeCo (Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via
    Minimum Eigenvalue of Correlation", NeurIPS 2023, its score):
    ``Σ_layers λ_min(P(f_l(X)))``, ``f_l(X)`` the ``C x positions`` feature map of weight
    layer ``l`` for one sample ``X`` and ``P`` the Pearson correlation matrix of its ``C``
    channels over the positions.

    The batch is run once in train mode and sample ``sample`` (default 0) is read, as the
    reference code reads the first sample of the batch it runs; for graph data the whole
    graph is the one sample, its nodes the positions. A layer without positions (a
    ``(N, C)`` output) has no correlation and adds nothing; a constant channel's undefined
    correlations are 0, as in the reference code. The reference hooks every submodule
    (containers, norms and activations too, counting a feature map several times); we sum
    over the weight layers. Higher is better, as in the paper.
    """
    inputs, ctx, _ = batch
    module.train()
    _weights(module, name)
    graph_data = _is_graph_data(ctx)
    if not graph_data and not 0 <= sample < inputs[0].shape[0]:
        raise SearchError(f"proxy {name!r}: sample {sample} is not in a batch of "
                          f"{inputs[0].shape[0]}")
    with torch.no_grad(), _activations(module) as acts:
        _forward(module, inputs, ctx, name)
    total, used = 0.0, 0
    for a in acts:
        f = a.T if graph_data and a.dim() == 2 else a[sample].reshape(a.shape[1], -1)
        if f.shape[1] < 2:
            continue
        corr = torch.nan_to_num(torch.corrcoef(f.double()), nan=0.0, posinf=0.0, neginf=0.0)
        total += float(torch.linalg.eigvalsh(corr)[0])
        used += 1
    if not used:
        raise SearchError(f"proxy {name!r} correlates the channels of feature maps over their "
                          "positions; no weight layer of the module gives one with 2 or more "
                          "positions (a neuron-level MLP has none)")
    return total


def _cost(module, batch, input_shape, name):
    graph = getattr(module, "graph", None)
    if graph is None:
        raise SearchError(f"proxy {name!r} counts the module's graph: give a compiled module "
                          f"(supernet.compile(graph)), got {type(module).__name__}")
    if input_shape is None and batch is not None:
        shapes = [list(x.shape[1:]) for x in batch[0]]  # per sample (per node for a graph)
        input_shape = shapes[0] if len(shapes) == 1 else shapes
    try:
        return cost(graph, input_shape=input_shape).total
    except SupernetError as exc:
        raise SearchError(f"proxy {name!r}: the cost model cannot count graph "
                          f"{graph.name!r}: {exc}") from exc


@register_proxy("params", data=False, target=False)
def params(module, batch, input_shape=None, name="params"):
    """Parameters of the module's graph, ``cost(graph).total.params``
    (:func:`supernet.cost.cost`: at the unit levels the connections the masks hold, not
    the dense storage). Higher is better, as for the ``#params`` baseline of Abdelfattah
    et al. (ICLR 2021, Table 1). Data-free; a batch only gives the input shape."""
    return float(_cost(module, batch, input_shape, name).params)


@register_proxy("flops", data=False, target=False)
def flops(module, batch, input_shape=None, name="flops"):
    """Multiply-accumulates of one sample, ``cost(graph).total.macs``: MACs, as the
    "FLOPs" of NAS-Bench-201 and of Abdelfattah et al. (ICLR 2021, Table 1) are counted
    (one MAC is two floating-point operations). The input shape is the batch's per-sample
    shape, ``input_shape``, or what the graph's inputs declare. Higher is better, as there."""
    return float(_cost(module, batch, input_shape, name).macs)
