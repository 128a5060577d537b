"""The steps' autograd economies against the plain path: the first-order architecture step
builds no graph for the weights' gradients, the weight step none for the mixing weights';
the parameters after each step are those of the plain step."""

import contextlib

import pytest
import torch
from search_graphs import darts_like, data

import supernet as sn
from supernet.search import BilevelSearch
from supernet.search import steps as steps_mod


def one_search(strategy):
    torch.manual_seed(0)
    g = darts_like()
    module = sn.compile(g).double()
    x, y = data(16)
    cfg = {"epochs": 1, "batch_size": 8, "eval_batches": 0}
    s = BilevelSearch(g, (x.double(), y), strategy=strategy, config=cfg, discretization=None,
                      module=module)
    with torch.no_grad():
        for a in module.arch_parameters():
            a.normal_()
    return s, [(x[:8].double(), y[:8]), (x[8:].double(), y[8:])]


def run_steps(s, batches):
    tb, vb = batches
    s._arch_step(vb, s.batch_fn(tb), 0.025, 0)
    arch = [p.detach().clone() for p in s.module.arch_parameters()]
    s._weight_step(*s.batch_fn(tb))
    return arch, [p.detach().clone() for p in s.module.weights()]


@pytest.mark.parametrize("strategy", ["darts", "pcdarts"])
def test_steps_with_constants_equal_the_plain_steps(strategy, monkeypatch):
    s, batches = one_search(strategy)
    economical = run_steps(s, batches)
    monkeypatch.setattr(steps_mod, "constants", lambda params: contextlib.nullcontext())
    s, batches = one_search(strategy)
    plain = run_steps(s, batches)
    for ours, ref in zip(economical, plain):
        assert len(ours) == len(ref)
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_constants_leave_no_graph_for_their_gradients():
    s, (tb, vb) = one_search("darts")
    m = s.module
    x = s.batch_fn(tb)[0][0]
    with steps_mod.constants(m.weights()):
        out = m(x)
    leaves = set()
    stack = [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None:
            continue
        if hasattr(fn, "variable"):
            leaves.add(id(fn.variable))
        stack.extend(f for f, _ in fn.next_functions)
    assert leaves == {id(p) for p in m.arch_parameters()}
    assert all(p.requires_grad for p in m.weights())  # put back
