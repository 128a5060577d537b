"""User modules reach the command line: --import, imports: in a config, and the entry-point
group supernet.plugins of installed packages."""

import sys
import textwrap

import pytest

from supernet import registry
from supernet.cli import main
from supernet.config import RunConfig
from supernet.errors import ConfigError
from supernet.ops import list_ops, unregister_op

OP_MODULE = textwrap.dedent('''
    import supernet
    from torch import nn

    @supernet.register_op("{name}", override=True)
    def build(C_in, C_out):
        """A plugin's op."""
        return nn.Identity()
''')


def test_import_of_a_module_name_and_of_a_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "plugin_by_name.py").write_text(OP_MODULE.format(name="plugin_op_a"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "by_path.py").write_text(OP_MODULE.format(name="plugin_op_b"))
    monkeypatch.chdir(tmp_path)  # a module name is found in the current folder too
    try:
        assert main(["list", "ops", "--import", "plugin_by_name", "--import", "sub/by_path.py",
                     "--filter", "plugin_op_*", "--names"]) == 0
        assert capsys.readouterr().out.split() == ["plugin_op_a", "plugin_op_b"]
    finally:
        for name in ("plugin_op_a", "plugin_op_b"):
            if name in list_ops():
                unregister_op(name)
        sys.modules.pop("plugin_by_name", None), sys.modules.pop("by_path", None)


@pytest.mark.parametrize("source, name, message", [
    (None, "no_such_plugin_xyz", r"--import: no module 'no_such_plugin_xyz' \(looked on "
                                 r"sys.path and in .*\); install the package"),
    ("import not_installed_dep_xyz\n", "plugin_bad_dep",
     r"importing 'plugin_bad_dep' failed: it imports 'not_installed_dep_xyz', which is not"),
    ("x = 1\nraise ValueError('bad option')\n", "plugin_raises",
     r"importing 'plugin_raises' failed: ValueError: bad option \(.*plugin_raises.py, line 2\)"),
    (None, "missing_file.py", r"--import: no file 'missing_file.py'"),
])
def test_a_module_that_cannot_be_imported_is_named(tmp_path, monkeypatch, capsys, source, name,
                                                  message):
    import re

    if source is not None:
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    assert main(["list", "ops", "--import", name]) == 2
    assert re.search(message, capsys.readouterr().err)
    sys.modules.pop(name, None)


def test_imports_in_a_config_are_checked_and_imported_before_the_run(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="config key 'imports' must be list, got 'my_mod'"):
        RunConfig.from_dict({"imports": "my_mod"})
    with pytest.raises(ConfigError, match="config key 'imports' is a list"):
        RunConfig.from_dict({"imports": [3]})
    (tmp_path / "plugin_data.py").write_text(textwrap.dedent('''
        import torch
        from supernet.data import DataSplits, register_dataset

        @register_dataset("plugin_blobs", override=True)
        def blobs(val_fraction=0.5, seed=0):
            g = torch.Generator().manual_seed(seed)
            x = torch.randn(60, 1, 16, generator=g)
            y = torch.arange(60) % 2
            x[y == 1] += 1.5
            return DataSplits((x[:20], y[:20]), (x[20:40], y[20:40]), (x[40:], y[40:]), 2,
                              (1, 16), "plugin_blobs", {})
    '''))
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("imports: [plugin_data]\ndata: {name: plugin_blobs}\n"
                   "space: {name: darts1d, C: 4, layers: 3, steps: 2, multiplier: 2}\n"
                   "search: {epochs: 1, max_steps_per_epoch: 2, batch_size: 16}\n"
                   "train: {mode: none}\npictures: false\nprogress: false\n")
    try:
        assert main(["search", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 0
    finally:
        from supernet.data import DATASETS

        DATASETS.unregister("plugin_blobs")
        sys.modules.pop("plugin_data", None)


def test_installed_packages_register_through_the_entry_point_group(tmp_path, monkeypatch):
    # a package as pip installs it: its module and a dist-info declaring the entry point
    (tmp_path / "ep_plugin_pkg.py").write_text(OP_MODULE.format(name="plugin_op_ep") + textwrap.dedent('''
        CALLS = []

        def setup():
            CALLS.append(1)
    '''))
    info = tmp_path / "ep_plugin_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin-pkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[supernet.plugins]\nmine = ep_plugin_pkg:setup\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_PLUGINS_DONE", None)
    from supernet.ops.registry import OPS

    monkeypatch.setattr(OPS, "_plugins_loaded", False)
    try:
        assert "plugin_op_ep" in list_ops()  # listing loads the installed plugins once
        assert sys.modules["ep_plugin_pkg"].CALLS == [1]  # a callable entry point is called
        list_ops()
        assert sys.modules["ep_plugin_pkg"].CALLS == [1]
    finally:
        if "plugin_op_ep" in OPS:
            unregister_op("plugin_op_ep")
        sys.modules.pop("ep_plugin_pkg", None)


def test_a_broken_installed_plugin_is_named_and_hides_no_other(tmp_path, monkeypatch):
    info = tmp_path / "broken_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-pkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[supernet.plugins]\nbroken = broken_missing_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_PLUGINS_DONE", None)
    with pytest.warns(UserWarning, match="plugin broken = broken_missing_xyz"):
        errors = registry.load_plugins()
    assert len(errors) == 1 and "broken_missing_xyz" in errors[0]
