"""The second-order step: the finite-difference hypergradient of DARTS against the exact
one computed by autograd through the virtual step."""

import torch
from torch.func import functional_call

from supernet import Graph, compile
from supernet.search.unrolled import unrolled_arch_grads, virtual_step


def tiny():
    g = Graph("layer", name="tiny")
    g.add_input("x", channels=3)
    g.add_node("h", channels=3)
    g.add_edge("x", "h", ["linear", "identity", "relu"])
    g.add_node("y", channels=2)
    g.add_edge("h", "y", ["linear", "none"])
    g.set_outputs(["y"])
    return g


def _setup():
    """A double-precision network with random logits, train and validation batches, and
    an SGD optimizer with momentum and weight decay."""
    torch.manual_seed(0)
    net = compile(tiny()).double()
    with torch.no_grad():
        for p in net.arch_parameters():
            p.normal_()
    xt, yt = torch.randn(16, 3, dtype=torch.double), torch.randint(0, 2, (16,))
    xv, yv = torch.randn(16, 3, dtype=torch.double), torch.randint(0, 2, (16,))
    opt = torch.optim.SGD(net.weights(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    return net, xt, yt, xv, yv, opt


def test_finite_difference_hypergradient_matches_exact_autograd():
    net, xt, yt, xv, yv, opt = _setup()
    ce = torch.nn.functional.cross_entropy
    ce(net(xt), yt).backward()  # one real step, so that momentum buffers exist
    opt.step()
    opt.zero_grad()
    lr = 0.1
    fd, _ = unrolled_arch_grads(net, lambda: ce(net(xt), yt), lambda: ce(net(xv), yv), opt, lr)

    # exact: d/dalpha L_val(w - lr (mu m + grad_w L_train(w, alpha) + wd w), alpha)
    names = [n for n, p in net.named_parameters() if not n.startswith("arch.")]
    arch_names = [n for n, _ in net.named_parameters() if n.startswith("arch.")]
    params = dict(net.named_parameters())
    w = [params[n].detach() for n in names]
    alpha = [params[n].detach().clone().requires_grad_() for n in arch_names]
    wr = [t.clone().requires_grad_() for t in w]

    def call(ws, al, x):
        return functional_call(net, {**dict(zip(names, ws)), **dict(zip(arch_names, al))}, (x,))

    g = torch.autograd.grad(ce(call(wr, alpha, xt), yt), wr, create_graph=True)
    w_new = []
    for p, t, gi in zip(names, wr, g):
        buf = opt.state[params[p]]["momentum_buffer"]
        w_new.append(t - lr * (0.9 * buf + gi + 3e-4 * t))
    exact = torch.autograd.grad(ce(call(w_new, alpha, xv), yv), alpha)
    for a, b in zip(fd, exact):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7), (a, b)
    # and the second-order term matters: the first-order gradient is different
    first = torch.autograd.grad(ce(call(w, alpha, xv), yv), alpha)
    assert any(not torch.allclose(a, b, rtol=1e-3) for a, b in zip(first, exact))


def test_unrolled_step_restores_weights_and_buffers_exactly():
    g = Graph("layer", name="bn")
    g.add_input("x", channels=3)
    g.add_node("h", channels=4)
    g.add_edge("x", "h", ["conv_3x3", "conv_1x1"])
    g.add_node("b", channels=4, op="batchnorm")
    g.add_edge("h", "b", "identity")
    g.set_outputs(["b"])
    net = compile(g)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD(net.weights(), lr=0.1, momentum=0.9)
    x = torch.randn(4, 3, 5, 5)
    grads, loss = unrolled_arch_grads(net, lambda: net(x).pow(2).mean(),
                                      lambda: net(x + 1).pow(2).mean(), opt, 0.1)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(gr.shape == p.shape for gr, p in zip(grads, net.arch_parameters()))


def test_virtual_step_uses_momentum_and_weight_decay():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = torch.optim.SGD([w], lr=0.5, momentum=0.9, weight_decay=0.1)
    w.grad = torch.tensor([1.0, 1.0])
    opt.step()  # momentum buffer = grad + wd * w = [1.1, 1.2]
    buf = opt.state[w]["momentum_buffer"].clone()
    (out,) = virtual_step([w], [torch.tensor([0.5, 0.5])], opt, 0.1)
    want = w.detach() - 0.1 * (0.9 * buf + 0.5 + 0.1 * w.detach())
    assert torch.allclose(out, want)


def test_a_stochastic_train_loss_is_evaluated_with_one_sample():
    # The hypergradient differentiates L_train(w, alpha; s) for one draw s of its noise
    # (dropout, drop-path, Gumbel samples): the virtual step and both finite-difference
    # points must see the same draw, or the difference divided by 2 eps is noise.
    net, xt, yt, xv, yv, opt = _setup()
    ce = torch.nn.functional.cross_entropy
    masks = []

    def train_loss():
        mask = (torch.rand(16, 3) > 0.5).double() * 2.0  # inverted dropout at 1/2
        masks.append(mask)
        return ce(net(xt * mask), yt)

    lr = 0.1
    fd, _ = unrolled_arch_grads(net, train_loss, lambda: ce(net(xv), yv), opt, lr)
    assert len(masks) == 3 and all(torch.equal(m, masks[0]) for m in masks)

    names = [n for n, p in net.named_parameters() if not n.startswith("arch.")]
    arch_names = [n for n, _ in net.named_parameters() if n.startswith("arch.")]
    params = dict(net.named_parameters())
    wr = [params[n].detach().clone().requires_grad_() for n in names]
    alpha = [params[n].detach().clone().requires_grad_() for n in arch_names]

    def call(ws, al, x):
        return functional_call(net, {**dict(zip(names, ws)), **dict(zip(arch_names, al))}, (x,))

    g = torch.autograd.grad(ce(call(wr, alpha, xt * masks[0]), yt), wr, create_graph=True)
    w_new = [t - lr * (gi + 3e-4 * t) for t, gi in zip(wr, g)]  # no momentum buffer yet
    exact = torch.autograd.grad(ce(call(w_new, alpha, xv), yv), alpha)
    for a, b in zip(fd, exact):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7), (a, b)
    # the draws of the train loss do not repeat from one architecture step to the next
    unrolled_arch_grads(net, train_loss, lambda: ce(net(xv), yv), opt, lr)
    assert not torch.equal(masks[3], masks[0])
