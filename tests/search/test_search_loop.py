"""The bilevel loop: resume, NaN handling, errors before training (every strategy end to end:
tests/search/test_strategies.py)."""

import os

import pytest
import torch
from search_graphs import chain, darts_like, data, small_config

from supernet import lint
from supernet.edits import AddOp
from supernet.errors import ConfigError, SearchError, UnknownNameError
from supernet.search import (
    BilevelSearch,
    CreationPolicy,
    SearchConfig,
    create_strategy,
    list_strategies,
    search,
)

STRATEGIES = ["darts", "darts2", "pcdarts", "fairdarts", "snas", "gdas", "proxyless", "spos"]


def test_registry_lists_and_fails_with_choices():
    assert set(STRATEGIES) <= set(list_strategies())
    with pytest.raises(UnknownNameError, match=r"could not resolve strategy 'dartz' among .*did you mean 'darts'"):
        create_strategy("dartz")
    with pytest.raises(ConfigError, match=r"strategy 'gdas': unknown key 'tau'"):
        create_strategy("gdas", tau=3)
    with pytest.raises(ConfigError, match=r"epochs=0: must be an int >= 1"):
        create_strategy("darts", epochs=0)
    s = create_strategy("darts2", epochs=3)
    assert s.config == {"second_order": True, "epochs": 3}


def test_history_records_losses_accuracy_and_gate_probabilities():
    g = darts_like()
    r = search(g, data(), strategy="gdas", config=small_config(epochs=2, eval_batches=1))
    h = r.history
    assert [e["epoch"] for e in h] == [1, 2]
    assert h[0]["lr"] == pytest.approx(0.025) and h[1]["lr"] < 0.025
    assert 0.0 <= h[0]["train_acc"] <= 1.0 and 0.0 <= h[0]["eval_acc"] <= 1.0
    p = h[0]["gates"]["normal:c0->n0"][0]
    assert len(p) == 6 and sum(p) == pytest.approx(1.0)
    assert h[0]["tau"] == pytest.approx(10.0) and h[1]["tau"] == pytest.approx(0.1)


def test_arch_steps_move_arch_params_and_warmup_freezes_them():
    g = darts_like()
    s = BilevelSearch(g, data(), config=small_config(epochs=2, warmup_epochs=1), discretization=None)
    before = [p.detach().clone() for p in s.module.arch_parameters()]
    s.run(until=1)
    assert all(torch.equal(a, b) for a, b in zip(before, s.module.arch_parameters()))
    s.run()
    assert any(not torch.equal(a, b) for a, b in zip(before, s.module.arch_parameters()))
    assert s.module.gates()  # no discretization policy: the super-network stays


def _states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    return all(torch.equal(sa[k], sb[k]) for k in sa if torch.is_tensor(sa[k]))


@pytest.mark.parametrize("strategy", ["darts", "gdas", "pcdarts"])
def test_resume_ends_in_the_same_state_as_an_uninterrupted_run(tmp_path, strategy):
    if strategy == "pcdarts":
        strategy = create_strategy("pcdarts", warmup_epochs=1)
    cfg = small_config(epochs=3, checkpoint_dir=str(tmp_path / "a"), drop_path_prob=0.2)
    straight = BilevelSearch(darts_like(), data(), strategy=strategy, config=cfg,
                             discretization=None)
    straight.run()
    cfg_b = dict(cfg, checkpoint_dir=str(tmp_path / "b"))
    first = BilevelSearch(darts_like(), data(), strategy=strategy, config=cfg_b,
                          discretization=None)
    first.run(until=2)  # killed after epoch 2
    assert os.path.exists(tmp_path / "b" / "last.safetensors")
    resumed = BilevelSearch.resume(str(tmp_path / "b" / "last.safetensors"), data(), discretization=None)
    assert resumed.state.epoch == 2
    resumed.run()
    assert _states_equal(straight.module, resumed.module)
    assert [h["train_loss"] for h in straight.state.history] == \
        [h["train_loss"] for h in resumed.state.history]


def test_resume_after_discretization_keeps_graph_and_log(tmp_path):
    cfg = small_config(epochs=2, checkpoint_dir=str(tmp_path))
    s = BilevelSearch(darts_like(), data(), config=cfg)
    r = s.run()
    back = BilevelSearch.resume(str(tmp_path / "last.safetensors"), data())
    assert back.finalized and back.graph.same_as(r.graph)
    assert len(back.editor.log) == len(r.log)
    assert _states_equal(back.module, r.module)


class NaNAfter:
    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, out, y):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(out, y)
        return loss * float("nan") if self.calls > self.n else loss


def test_nan_loss_stops_with_a_clear_error_and_saves_nothing(tmp_path):
    s = BilevelSearch(darts_like(), data(), config=small_config(checkpoint_dir=str(tmp_path)),
                      loss_fn=NaNAfter(2))
    with pytest.raises(SearchError, match=r"loss is nan at epoch 1, step \d\. No finite state "
                                          r"is kept: the search wrote no checkpoint"):
        s.run()
    assert os.listdir(tmp_path) == []  # the state at hand is the fault's: nothing is written
    assert all(torch.isfinite(p).all() for p in s.module.parameters())


def test_non_finite_arch_params_stop_the_search(tmp_path):
    s = BilevelSearch(darts_like(), data(), config=small_config(checkpoint_dir=str(tmp_path)))
    with torch.no_grad():
        s.module.arch_parameters()[0][0, 1] = float("inf")
    with pytest.raises(SearchError, match=r"architecture parameter 'normal:c0->n0' is not finite"):
        s.run()
    s = BilevelSearch(darts_like(), data(), config=small_config(arch_lr=1e300))
    with pytest.raises(SearchError, match=r"(became non-finite|non-finite architecture|is nan)"):
        s.run()
    assert all(torch.isfinite(p).all() for p in s.module.arch_parameters())


def test_errors_before_training_name_the_key():
    g = darts_like()
    with pytest.raises(ConfigError, match=r"unknown key 'lr'"):
        BilevelSearch(g, data(), config={"lr": 0.1})
    with pytest.raises(ConfigError, match=r"batch_size=0: must be an int >= 1"):
        BilevelSearch(g, data(), config={"batch_size": 0})
    with pytest.raises(ConfigError, match=r"train_portion=1.5: must be in \(0, 1\)"):
        SearchConfig(train_portion=1.5)
    with pytest.raises(UnknownNameError, match=r"strategy: could not resolve strategy 'nope'"):
        BilevelSearch(g, data(), strategy="nope")
    x, y = data()
    with pytest.raises(SearchError, match=r"input 'x' of graph 'tiny_darts' expects 3 channels"):
        BilevelSearch(g, (x[:, :1], y), config=small_config())
    with pytest.raises(SearchError, match=r"3 sample\(s\) cannot be split at train_portion=0.5"):
        BilevelSearch(g, (x[:3], y[:3]), config=small_config())
    with pytest.raises(SearchError, match=r"tensors of different lengths"):
        BilevelSearch(g, (x, y[:5]), config=small_config())
    plain = chain(ops=("conv_3x3",))
    with pytest.raises(SearchError, match=r"no gate"):
        BilevelSearch(plain, data(), config=small_config())


class GrowOnce(CreationPolicy):
    """Adds a candidate op through the editor after epoch 1 (zero init, no output change)."""

    def __init__(self):
        self.calls = []

    def on_search_start(self, state):
        self.calls.append("start")

    def on_epoch_end(self, state):
        self.calls.append(state.epoch)
        if state.epoch == 1:
            state.editor.apply(AddOp("b0", "b1", "conv", init="zero"))

    def state_dict(self):
        return {"calls": list(self.calls)}


def test_creation_policy_edits_during_the_search_and_optimizers_follow():
    g = chain(ops=("conv_3x3", "skip_connect", "none"))
    pol = GrowOnce()
    s = BilevelSearch(g, data(), config=small_config(epochs=2), creation=[pol])
    r = s.run()
    assert pol.calls == ["start", 1, 2]
    assert r.log[0].kind == "add_op"
    # the grown op was trained in epoch 2: its parameters are in the weight optimizer
    assert r.state.weight_optimizer.param_groups[0]["params"]
    assert any(e.kind == "add_op" for e in r.log)
    lint(g)


def test_policy_hooks_see_evaluate_and_train():
    seen = {}

    class Probe(CreationPolicy):
        def on_epoch_end(self, state):
            seen["acc"] = state.evaluate(max_batches=1)
            w = [p.detach().clone() for p in state.module.weights()]
            state.train(1)
            seen["moved"] = any(not torch.equal(a, b) for a, b in zip(w, state.module.weights()))

    search(darts_like(), data(), config=small_config(), creation=[Probe()])
    assert 0.0 <= seen["acc"] <= 1.0 and seen["moved"]


class UnitGated(__import__("supernet").GraphModule):
    """A module of another level: one (n, 2) keep/drop group over hidden units, no gates()."""

    def __init__(self, graph):
        super().__init__(graph)
        self.fc1 = torch.nn.Linear(3 * 8 * 8, 16)
        self.fc2 = torch.nn.Linear(16, 3)
        self.arch = torch.nn.ParameterDict({"hidden": torch.nn.Parameter(torch.zeros(16, 2))})
        from supernet.gates import Softmax

        self.relaxation = Softmax()

    def forward(self, x):
        keep = self.relaxation(dict(self.arch.items()))["hidden"].weights[:, 0]
        return self.fc2(torch.relu(self.fc1(x.flatten(1))) * keep)


def test_the_loop_knows_nothing_about_levels():
    from supernet import Graph

    g = Graph("neuron", name="units")
    g.add_input("x", channels=3)
    net = UnitGated(g)
    before = net.arch["hidden"].detach().clone()
    r = BilevelSearch(g, data(), module=net, discretization=None,
                      config=small_config(epochs=2, progress=True)).run()
    assert not torch.equal(before, net.arch["hidden"])
    assert len(r.history[-1]["gates"]["hidden"]) == 16


class GrowAt(CreationPolicy):
    GROW = {1: "conv", 3: "conv_1x1"}

    def on_epoch_end(self, state):
        if state.epoch in self.GROW:  # random init: its seed comes from the editor
            state.editor.apply(AddOp("b0", "b1", self.GROW[state.epoch], init="random"))


def test_resume_with_edits_after_the_checkpoint(tmp_path):
    def run(directory, until=None):
        g = chain(ops=("conv_3x3", "skip_connect", "none"))
        s = BilevelSearch(g, data(), config=small_config(epochs=4, checkpoint_dir=directory),
                          creation=[GrowAt()], discretization=None)
        s.run(until)
        return s

    straight = run(str(tmp_path / "a"))
    run(str(tmp_path / "b"), until=2)
    resumed = BilevelSearch.resume(str(tmp_path / "b" / "last.safetensors"), data(),
                                   creation=[GrowAt()], discretization=None)
    resumed.run()
    assert len(resumed.editor.log) == 2
    assert resumed.editor.log[1].seed == straight.editor.log[1].seed
    assert _states_equal(straight.module, resumed.module)
