"""DARTS-: the edge output with the auxiliary skip, its β schedule, and what the auxiliary
term leaves to α."""

import pytest
import torch
from search_graphs import chain, data, small_config
from unit_search_helpers import mlp_data, tiny_mlp

from supernet import Graph, compile
from supernet.errors import ConfigError, SearchError
from supernet.gates import Decision
from supernet.search import BilevelSearch, create_strategy
from supernet.search.stabilizers import DartsMinus, StabilizerSet

OPS = ["conv_1x1", "skip_connect", "avg_pool_3x3", "none"]


def _edge(ops=OPS, stride=1):
    g = Graph("layer", name="edge")
    g.add_input("x", channels=4)
    g.add_node("h", channels=4)
    g.add_edge("x", "h", list(ops), stride=stride)
    g.set_outputs(["h"])
    m = compile(g).eval()
    with torch.no_grad():
        m.arch_parameters()[0].copy_(torch.tensor([[0.3, -0.4, 1.2, 0.1]]))
    return m


def _with(m, beta):
    s = DartsMinus()
    stab = StabilizerSet([s])
    stab.attach(m)
    s.beta_now.fill_(beta)
    return stab


def _alone(m, x, k):
    """The output of candidate ``k`` alone (explicit gates: no relaxation, no stabilizer)."""
    w = torch.zeros(1, len(OPS))
    w[0, k] = 1.0
    return m(x, gates={"x->h": Decision(w)})


def test_the_edge_output_is_the_mixture_plus_beta_skip():
    m, x = _edge(), torch.randn(2, 4, 5, 5)
    stab = _with(m, 0.7)
    with torch.no_grad():
        w = torch.softmax(m.arch_parameters()[0], -1)[0]
        outs = [_alone(m, x, k) for k in range(len(OPS))]
        assert torch.equal(outs[1], x)  # stride 1: the auxiliary term is the identity
        want = sum(w[k] * outs[k] for k in range(len(OPS))) + 0.7 * x
        with stab.in_phase("weights"):
            got = m(x)
        torch.testing.assert_close(got, want)
        # at β = 0 the network is DARTS' own
        stab.items[0].beta_now.fill_(0.0)
        with stab.in_phase("arch"):
            assert torch.equal(m(x), m.forward(x, gates=m.relaxation(dict(m.arch.items()))))
        with stab.in_phase("arch"):
            torch.testing.assert_close(m(x), sum(w[k] * outs[k] for k in range(len(OPS))))


def test_at_stride_2_the_term_is_the_edge_s_own_skip_candidate():
    m, x = _edge(stride=2), torch.randn(2, 4, 6, 6)
    stab = _with(m, 0.5)
    with torch.no_grad():
        w = torch.softmax(m.arch_parameters()[0], -1)[0]
        outs = [_alone(m, x, k) for k in range(len(OPS))]
        assert outs[1].shape[-1] == 3  # a factorized reduce
        with stab.in_phase("eval"):
            got = m(x)
        torch.testing.assert_close(got, sum(w[k] * outs[k] for k in range(len(OPS)))
                                   + 0.5 * outs[1])


def test_alpha_gets_the_softmax_gradient_of_the_mixture_weights():
    m, x = _edge(), torch.randn(2, 4, 5, 5)
    a = m.arch_parameters()[0]
    c = torch.randn(2, 4, 5, 5)

    def grad(beta, loss):
        stab = _with(m, beta)
        a.grad = None
        with stab.in_phase("arch"):
            loss(m(x)).backward()
        stab.detach()
        return a.grad.clone()

    # a loss linear in the output: the auxiliary term changes nothing in α's gradient
    linear = lambda y: (c * y).sum()  # noqa: E731
    torch.testing.assert_close(grad(0.8, linear), grad(0.0, linear))
    # any loss: J_softmax^T <dL/dy, o_k(x)>, dL/dy taken at the output with the term
    square = lambda y: (y ** 2).sum()  # noqa: E731
    with torch.no_grad():
        outs = torch.stack([_alone(m, x, k) for k in range(len(OPS))])
        p = torch.softmax(a, -1)[0]
        y = (p.view(-1, 1, 1, 1, 1) * outs).sum(0) + 0.8 * x
        dw = (2 * y * outs).flatten(1).sum(1)  # dL/dw_k
        jac = torch.diag(p) - torch.outer(p, p)
        want = (jac @ dw).view(1, -1)
    torch.testing.assert_close(grad(0.8, square), want)
    assert not torch.allclose(grad(0.8, square), grad(0.0, square))  # through the data


def test_beta_follows_the_authors_schedule():
    s = DartsMinus()
    assert [s.schedule(e, 50) for e in (0, 10, 25, 49)] == pytest.approx([1.0, 0.8, 0.5, 0.02])
    cos = DartsMinus(decay="cosine")
    assert [cos.schedule(e, 50) for e in (0, 25)] == pytest.approx([1.0, 0.5])
    assert DartsMinus(decay_epochs=10).schedule(12, 50) == 0.0
    with pytest.raises(ConfigError, match=r"decay='step'; expected one of \['linear', 'cosine'\]"):
        DartsMinus(decay="step")


def test_a_search_sets_beta_each_epoch_and_needs_a_skip_candidate():
    s = BilevelSearch(chain(), data(), strategy="darts_minus", discretization=None,
                      config=small_config(epochs=4, steps_per_epoch=1))
    s.run()
    assert float(s.stabilizers.items[0].beta_now) == pytest.approx(0.25)  # epoch 3 of 4
    with pytest.raises(ConfigError, match="no gated edge with a skip candidate"):
        BilevelSearch(chain(ops=("conv_3x3", "conv_1x1")), data(), strategy="darts_minus",
                      config=small_config())
    assert create_strategy("darts_minus", beta=0.5).stabilizers[0].beta == 0.5
    with pytest.raises(SearchError, match="neuron_mlp: stabilizer darts_minus adds a skip.*"
                                          "this graph is neuron-level"):
        BilevelSearch(tiny_mlp(), mlp_data(), config=small_config(),
                      strategy=create_strategy("darts", stabilizers=["darts_minus"]))
