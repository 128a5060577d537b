"""Final training of a found architecture: from scratch, fine-tuning, the evaluation network."""

import pytest
import torch
from search_graphs import darts_like, data

from supernet.errors import SearchError
from supernet.search import evaluation_graph
from supernet.spaces import SPACES
from supernet.train.retrain import fine_tune, retrain


def test_retrain_from_scratch_and_fine_tune(searched):
    g, net = searched
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r = retrain(g, data(), epochs=1, batch_size=8, steps_per_epoch=2, seed=3)
    assert r.module is not net and r.module.gates() == {}
    fresh_sd = r.module.state_dict()
    assert any(not torch.equal(fresh_sd[k], before[k]) for k in before)  # new weights
    assert r.history[0]["loss"] > 0 and 0 <= r.history[0]["acc"] <= 1
    r2 = retrain(g, data(), epochs=1, batch_size=8, steps_per_epoch=2, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(r.module.state_dict().values(),
                                                 r2.module.state_dict().values()))
    ft = fine_tune(net, data(), data(16, seed=1), epochs=1, batch_size=8, steps_per_epoch=2)
    assert ft.module is net and "val_acc" in ft.history[0]
    assert any(not torch.equal(net.state_dict()[k], before[k]) for k in before)
    with pytest.raises(SearchError, match=r"gates .* are left; discretize before retraining"):
        retrain(darts_like(), data())


def test_retrain_the_evaluation_network_built_from_the_text_form():
    from search_graphs import chain

    from search_spaces import register_space

    def decode(text, C=4):  # the text names the op of the single searched edge
        return chain(C=C, ops=(text,), n=1)

    register_space("test_search_chain", override=True,
                   encode=lambda g: g.edge("stem", "b0")["ops"][0], decode=decode)(chain)
    g = chain(ops=("conv_1x1",), n=1)
    g.meta["space"] = "test_search_chain"
    try:
        wide = evaluation_graph(g, C=8)
        assert wide.node("b0")["channels"] == 8
        assert wide.edge("stem", "b0")["ops"] == ["conv_1x1"]
        r = retrain(g, data(), build=lambda g: evaluation_graph(g, C=8), epochs=1,
                    batch_size=8, steps_per_epoch=1)
        assert r.module.graph.node("b0")["channels"] == 8
    finally:
        SPACES.unregister("test_search_chain")


def test_the_python_defaults_are_the_command_lines():
    import inspect

    from supernet.config import TrainBudget
    from supernet.train.retrain import train_module

    params = inspect.signature(train_module).parameters
    budget = TrainBudget()
    for key in ("epochs", "batch_size", "lr", "momentum", "weight_decay", "grad_clip"):
        assert params[key].default == getattr(budget, key), key
