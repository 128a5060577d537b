"""One rule for the loop settings of a search: what the caller set wins over the
strategy's own, which win over the library's defaults, whether the caller wrote a
SearchConfig or a dict."""

import pytest
from search_graphs import darts_like, data

from supernet.errors import ConfigError
from supernet.search import BilevelSearch, SearchConfig, create_strategy
from supernet.search.loop import merge_config


def test_a_search_config_records_the_fields_set():
    assert SearchConfig().given == frozenset()
    c = SearchConfig(3, batch_size=64)  # 64 is the default's value: set all the same
    assert c.given == {"epochs", "batch_size"}
    assert c.given_dict() == {"epochs": 3, "batch_size": 64}
    c.w_lr = 0.1
    assert c.given == {"epochs", "batch_size", "w_lr"}
    assert c.replace(seed=2).given == {"epochs", "batch_size", "w_lr", "seed"}
    assert SearchConfig.from_dict({"arch_lr": 1e-3}).given == {"arch_lr"}
    assert c == SearchConfig(3, 64, w_lr=0.1)  # what was set is no part of equality


@pytest.mark.parametrize("config", [SearchConfig(batch_size=64), {"batch_size": 64}],
                         ids=["dataclass", "dict"])
def test_what_the_caller_set_wins_over_the_strategy_whatever_the_form(config):
    pcdarts = create_strategy("pcdarts")
    assert pcdarts.config["batch_size"] == 256
    merged = merge_config(pcdarts, config)
    assert merged.batch_size == 64  # the caller's, though it equals the library default
    assert merged.w_lr == 0.1 and merged.warmup_epochs == 15  # the strategy's
    assert merged.arch_betas == (0.5, 0.999)  # the library's
    search = BilevelSearch(darts_like(), data(), strategy="pcdarts", config=config)
    assert search.config.batch_size == 64 and search.config.w_lr == 0.1


def test_the_strategy_wins_over_the_library_defaults():
    for config in (None, {}, SearchConfig()):
        merged = merge_config(create_strategy("pcdarts"), config)
        assert (merged.batch_size, merged.arch_lr) == (256, 6e-4)
    assert merge_config(None, SearchConfig(epochs=2)).to_dict() == SearchConfig(epochs=2).to_dict()
    # options given to the strategy are the caller's too: they win over its own
    assert merge_config(create_strategy("pcdarts", arch_lr=1e-2), None).arch_lr == 1e-2
    assert merge_config(create_strategy("pcdarts", config={"arch_lr": 1e-2}), None).arch_lr == 1e-2


def test_a_setting_the_strategy_owns_cannot_be_contradicted():
    stages = [{"cells": 3, "keep": 1, "dropout": 0.0, "epochs": 2, "warmup": 0}]
    pdarts = create_strategy("pdarts", space="darts1d", stages=stages)
    assert pdarts.owns == {"epochs": "strategy.stages"} and pdarts.config["epochs"] == 2
    assert merge_config(pdarts, {"epochs": 2}).epochs == 2
    with pytest.raises(ConfigError, match=r"^search config: epochs=3, but strategy 'pdarts' "
                                          r"sets epochs=2 from its own options; leave epochs "
                                          r"unset \(null\), or change strategy\.stages"):
        merge_config(pdarts, SearchConfig(epochs=3))
    with pytest.raises(ConfigError, match=r"strategy\.epochs=3, but strategy 'pdarts'"):
        create_strategy("pdarts", stages=stages, epochs=3)
