"""Run configurations: one rule merges every form a user writes (a mapping, a file,
``--set``) over the packaged defaults key by key; the keys the user set win over the
strategy's loop settings, which win over the library's; the run driver names no strategy."""

import ast
import pathlib

import pytest

import supernet.run
from supernet.config import RunConfig, apply_overrides, default_config_path, load_config
from supernet.errors import ConfigError
from supernet.run import effective_config, make_strategy, search_settings
from supernet.search import list_strategies
from supernet.search.loop import merge_config


def _file(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _settings(cfg):
    strategy = make_strategy(cfg)
    return merge_config(strategy, search_settings(cfg, strategy))


def test_the_packaged_file_is_the_dataclass_defaults_and_sets_nothing():
    packaged = load_config()
    assert packaged == RunConfig() and packaged.given == frozenset()
    assert load_config(default_config_path()).given  # read as a user's file, it sets keys


def test_a_file_changes_only_the_keys_it_names(tmp_path):
    cfg = load_config(_file(tmp_path, "search: {epochs: 1}\n"))
    expected = RunConfig().to_dict()
    expected["search"]["epochs"] = 1
    assert cfg.to_dict() == expected and cfg.given == {"search.epochs"}
    settings = _settings(cfg)
    # before, such a file fell back to other defaults: arch_lr 3e-4, batch 64, val 0.2
    assert (settings.epochs, settings.batch_size, settings.arch_lr) == (1, 128, 0.003)
    assert cfg.data.options == {"val_fraction": 0.5} and cfg.train.epochs == 15
    cfg = load_config(_file(tmp_path, '{"space": {"C": 8}}', "run.json"))
    assert (cfg.space.name, cfg.space.options) == ("darts1d", {"C": 8})


def test_user_values_win_over_the_strategy_and_the_strategy_over_the_defaults(tmp_path):
    cfg = load_config(_file(tmp_path, "strategy: {name: pcdarts}\n"))
    settings = _settings(cfg)
    # the packaged batch size and arch_lr are the library's: PC-DARTS' own win
    assert (settings.batch_size, settings.arch_lr, settings.epochs) == (256, 6e-4, 3)
    for form in (load_config(_file(tmp_path, "strategy: {name: pcdarts, arch_lr: 0.01}\n"
                                             "search: {batch_size: 64}\n")),
                 apply_overrides(cfg, ["search.batch_size=64", "strategy.arch_lr=0.01"]),
                 RunConfig.from_dict({"strategy": {"name": "pcdarts", "arch_lr": 0.01},
                                      "search": {"batch_size": 64}})):
        assert {"search.batch_size", "strategy.arch_lr"} <= form.given
        settings = _settings(form)
        assert (settings.batch_size, settings.arch_lr, settings.w_lr) == (64, 0.01, 0.1)
    # a user value equal to a default is set all the same
    assert _settings(apply_overrides(cfg, ["search.batch_size=128"])).batch_size == 128
    # the dataclass form: fields constructed or assigned are the user's
    direct = RunConfig()
    direct.strategy = RunConfig.from_dict({"strategy": "pcdarts"}).strategy
    assert _settings(direct).batch_size == 256
    direct.search.batch_size = 32
    assert direct.given == {"strategy.name", "strategy.arch_lr", "search.batch_size"}
    assert _settings(direct).batch_size == 32


def test_a_strategy_that_owns_its_epochs_takes_them_unless_contradicted(tmp_path):
    stages = "[{cells: 3, keep: 1, dropout: 0.0, epochs: 2, warmup: 0}]"
    cfg = load_config(_file(tmp_path, f"strategy: {{name: pdarts, stages: {stages}}}\n"))
    assert _settings(cfg).epochs == 2 and _settings(cfg).batch_size == 96
    assert _settings(apply_overrides(cfg, ["search.epochs=null"])).epochs == 2
    with pytest.raises(ConfigError, match=r"^search\.epochs=3, but strategy 'pdarts' sets "
                                          r"epochs=2 .*change strategy\.stages"):
        _settings(apply_overrides(cfg, ["search.epochs=3"]))


def test_a_composed_strategy_is_a_section_without_a_name(tmp_path):
    cfg = load_config(_file(tmp_path, "strategy:\n  relaxation: {name: gumbel_max, tau_max: 5.0}\n"
                                      "  discretization: argmax\n"
                                      "  config: {arch_lr: 1.0e-3}\n"))
    assert cfg.strategy.name == "" and "name" not in cfg.to_dict()["strategy"]
    strategy = make_strategy(cfg)
    assert strategy.name == "composed" and strategy.relaxation.tau_max == 5.0
    assert _settings(cfg).arch_lr == 1e-3
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg and make_strategy(again).name == "composed"


def test_the_effective_config_reads_back_to_the_same_settings(tmp_path):
    cfg = load_config(_file(tmp_path, "strategy: {name: pcdarts, k: 2}\n"))
    settings = _settings(cfg)
    effective = effective_config(cfg, settings)
    assert effective["search"]["batch_size"] == 256 and effective["strategy"]["k"] == 2
    assert effective["strategy"]["config"]["warmup_epochs"] == 15
    assert "arch_lr" not in {k for k in effective["strategy"] if k != "config"}
    again = RunConfig.from_dict(effective)
    assert _settings(again).to_dict() == settings.to_dict()


def test_keys_validated_but_never_read_are_gone():
    with pytest.raises(ConfigError, match=r"config key 'search\.checkpoint_every' is unknown"):
        RunConfig.from_dict({"search": {"checkpoint_every": 1}})


def test_bad_keys_and_sections_fail_naming_them(tmp_path):
    with pytest.raises(ConfigError, match=r"run\.yaml: config key 'search\.epoch' is unknown\. "
                                          r"Did you mean 'epochs'"):
        load_config(_file(tmp_path, "search: {epoch: 1}\n"))
    with pytest.raises(ConfigError, match=r"config key 'search' is a section"):
        RunConfig.from_dict({"search": 3})
    with pytest.raises(ConfigError, match=r"config key 'space' is a name or a mapping"):
        RunConfig.from_dict({"space": 3})
    with pytest.raises(ConfigError, match=r"override 'search\.epochs\.x=1': 'search\.epochs' "
                                          r"is a key, not a section"):
        apply_overrides(RunConfig(), ["search.epochs.x=1"])


def test_the_run_driver_names_no_strategy():
    tree = ast.parse(pathlib.Path(supernet.run.__file__).read_text())
    names = set(list_strategies())
    found = [(n.lineno, n.value) for n in ast.walk(tree)
             if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in names]
    assert not found, f"supernet/run.py names strategies: {found}"
    assert {"darts", "pdarts"} <= names  # the check reads the real registry
