"""Path sampling at the cost of the standalone network of the path: a weight step of GDAS
or SPOS computes what the standalone network computes, and GDAS's architecture gradient is
the straight-through one."""

import copy

import pytest
import torch

import supernet
from search_spaces import create_space
from supernet.compiler.standalone import standalone
from supernet.edits import Editor
from supernet.gates import Decision
from supernet.search.choices.layer import ChoiceSpace
from supernet.search.relaxations import GumbelMax, UniformPath, set_phase, use_relaxation
from supernet.search.steps import constants


def _supernet(relax):
    torch.manual_seed(0)
    net = supernet.compile(create_space("nasbench201", C=4, N=1, num_classes=3))
    use_relaxation(net, relax)
    set_phase(net, "weights")
    net.memory_format = "preserve"  # the standalone network's format: equal to the bit
    return net


def _standalone_of(net, path):
    """A copy of ``net`` discretized to ``path`` ({gate key: candidate index}), as a
    standalone network sharing the copy's op modules."""
    twin = copy.deepcopy(net)
    g = twin.graph
    g.meta["constraints"] = {}
    space = ChoiceSpace(g, twin)
    choice = {key: e.ops[path[e.keys[0]]] for key, _, e in space.edges()}
    editor = Editor(g, twin)
    for e in space.edits(choice):
        editor.apply(e)
    return twin, standalone(g, twin)


def _grads(module, out, target):
    loss = torch.nn.functional.cross_entropy(out, target)
    params = [p for n, p in module.named_parameters() if not n.startswith("arch.")]
    torch.autograd.backward(loss, inputs=params)
    return {n: p.grad for n, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("method", ["gdas", "spos"])
def test_a_weight_step_computes_what_the_standalone_network_of_the_path_computes(method):
    relax = GumbelMax() if method == "gdas" else UniformPath(seed=0)
    net = _supernet(relax)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 1])
    for seed in range(100):  # a draw that samples 'none' on some edge, and other ops
        torch.manual_seed(seed)
        with torch.no_grad():
            gates = relax(dict(net.arch.items()))
        path = {k: d.active[0][0] for k, d in gates.items()}
        if 0 in path.values() and len(set(path.values())) > 2:
            break
    assert 0 in path.values()
    twin, plain = _standalone_of(net, path)
    if method == "spos":
        relax.fixed = {key: e.ops[path[e.keys[0]]] for key, _, e in relax.space.edges()}
    torch.manual_seed(seed)  # GDAS draws the same path in the forward
    with constants(net.arch_parameters()):
        out = net(x)
    ref = plain(x)
    assert torch.equal(out, ref)
    ours, theirs = _grads(net, out, y), _grads(twin, ref, y)
    assert ours.keys() == theirs.keys() and len(ours) > 10
    for n in ours:
        assert torch.equal(ours[n], theirs[n]), n
    buffers = dict(net.named_buffers())
    for n, b in twin.named_buffers():  # the sampled ops' statistics, updated alike
        assert torch.equal(buffers[n], b), n


class _Before(Decision):
    """The straight-through decision as GDAS computes it in every pass before the weight
    step held the architecture: ``h_k o_k(x) + Σ_{j≠k} h_j``."""

    def mix(self, i, ops, zero, x):
        y = Decision.mix(self, i, ops, zero, x)
        w, k = self.weights[i], self.active[i][0]
        return y + torch.cat([w[:k], w[k + 1:]]).sum()


def test_the_architecture_gradient_of_gdas_is_the_straight_through_one():
    relax = GumbelMax()
    net = _supernet(relax)
    set_phase(net, "arch")
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 1])
    torch.manual_seed(2)
    gates = relax(dict(net.arch.items()))
    before = {k: _Before(d.weights, d.active) for k, d in gates.items()}
    arch = list(net.arch.values())
    loss = torch.nn.functional.cross_entropy
    ours = torch.autograd.grad(loss(net(x, gates=gates), y), arch, retain_graph=True)
    ref = torch.autograd.grad(loss(net(x, gates=before), y), arch)
    for key, g, r in zip(net.arch.keys(), ours, ref):
        assert torch.equal(g, r), key
    assert sum(bool(g.abs().sum() > 0) for g in ours) > len(ours) // 2
    # the weight step (h not differentiated) leaves out only the product by h_k = 1 - p + p
    set_phase(net, "weights")
    params = list(net.weights())
    torch.manual_seed(2)
    gates = relax(dict(net.arch.items()))
    before = {k: _Before(d.weights, d.active) for k, d in gates.items()}
    kept = torch.autograd.grad(loss(net(x, gates=before), y), params, allow_unused=True,
                               retain_graph=True)
    with constants(net.arch_parameters()):
        held = {k: type(d)(d.weights.detach(), d.active) for k, d in gates.items()}
        plain = torch.autograd.grad(loss(net(x, gates=held), y), params, allow_unused=True)
    for a, b in zip(kept, plain):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
