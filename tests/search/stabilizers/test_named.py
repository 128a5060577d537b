"""The named stabilized strategies, stabilizers in a config file, and their errors."""

import pytest
from search_graphs import chain, data, small_config

from supernet.cli import main
from supernet.config import load_config
from supernet.errors import ConfigError
from supernet.run import make_strategy
from supernet.search import create_strategy, list_strategies, search
from supernet.search.stabilizers import SDARTS, BetaDecay, DartsMinus

NAMED = {"beta_darts": BetaDecay, "darts_minus": DartsMinus, "sdarts_rs": SDARTS,
         "sdarts_adv": SDARTS}


def test_named_strategies_are_darts_with_one_stabilizer_and_are_listed(capsys):
    assert set(NAMED) <= set(list_strategies())
    for name, cls in NAMED.items():
        s = create_strategy(name)
        assert [type(x) for x in s.stabilizers] == [cls]
        assert type(s.relaxation).__name__ == "Softmax" and not s.config
    assert create_strategy("sdarts_rs").stabilizers[0].mode == "random"
    assert create_strategy("sdarts_adv").stabilizers[0].mode == "adversarial"
    assert main(["list", "strategies", "--filter", "sdarts*"]) == 0
    out = capsys.readouterr().out
    assert "sdarts_rs" in out and "sdarts_adv" in out and "PGD" in out
    assert main(["list", "stabilizers", "--names"]) == 0
    assert capsys.readouterr().out.split() == ["beta_decay", "darts_minus", "lambda", "sdarts"]
    assert main(["list", "relaxations", "--filter", "dirichlet"]) == 0
    assert "DrNAS" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["beta_darts", "sdarts_adv"])
def test_named_strategies_search_to_a_discrete_graph(name):
    g = chain()
    search(g, data(), strategy=name, config=small_config(steps_per_epoch=1))
    assert all(len(e["ops"]) == 1 for _, _, e in g.nx.edges(data=True))


def test_stabilizers_compose_with_other_strategies_and_second_order():
    s = create_strategy("pcdarts", stabilizers=["beta_decay", {"name": "sdarts",
                                                               "mode": "adversarial"}])
    assert [type(x) for x in s.stabilizers] == [BetaDecay, SDARTS]
    assert type(s.relaxation).__name__ == "PartialChannels"
    g = chain(C=8)
    search(g, data(), strategy={"name": "darts2", "stabilizers": ["darts_minus", "beta_decay"]},
           config=small_config(steps_per_epoch=1))
    assert create_strategy("darts", stabilizers=None).stabilizers == []


def test_a_config_file_names_stabilizers_and_bad_ones_fail_naming_the_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("strategy: {name: darts, stabilizers: [{name: beta_decay, lam_max: 10}, "
                    "{name: sdarts, mode: adversarial}]}\n")
    s = make_strategy(load_config(str(path)))
    assert [type(x) for x in s.stabilizers] == [BetaDecay, SDARTS]
    assert s.stabilizers[0].lam_max == 10.0
    path.write_text("strategy: {stabilizers: [darts_minus]}\n")  # composed: softmax, argmax
    s = make_strategy(load_config(str(path)))
    assert s.name == "composed" and isinstance(s.stabilizers[0], DartsMinus)
    path.write_text("strategy: {name: darts, stabilizers: [{name: beta_decay, lamda: 1}]}\n")
    with pytest.raises(ConfigError, match=r"strategy.stabilizers\[0\] 'beta_decay': unknown key "
                                          r"'lamda'.*It takes \['lam_max', 'lam_min', 'ramp_"):
        make_strategy(load_config(str(path)))
    path.write_text("strategy: {name: darts, stabilizers: [{name: sdarts, mode: fgsm}]}\n")
    with pytest.raises(ConfigError, match=r"mode='fgsm'; expected one of \['random', 'adv"):
        make_strategy(load_config(str(path)))
