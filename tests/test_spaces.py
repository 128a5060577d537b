"""The space registry: a registry like every other (duplicates refused unless overridden, glob
filter, one unknown-name message), extended by installed packages through entry points."""

import subprocess
import sys

import pytest

from supernet import Graph
from supernet.errors import ConfigError, DuplicateNameError, UnknownNameError
from supernet.spaces import (
    SPACES,
    create_space,
    decode,
    encode,
    list_spaces,
    register_space,
    space_entry,
    space_example,
)


def _chain(width=8):
    g = Graph("layer", name="chain")
    g.add_input("x", channels=3)
    g.add_node("h", channels=width)
    g.add_edge("x", "h", ["conv_3x3", "conv_1x1"])
    g.set_outputs(["h"])
    g.meta["space"] = "glob_probe"
    return g


@pytest.fixture
def chain():
    register_space("glob_probe")(_chain)
    yield "glob_probe"
    SPACES.unregister("glob_probe")


def test_a_duplicate_space_is_refused_and_override_replaces(chain):
    with pytest.raises(DuplicateNameError, match="space 'glob_probe' is registered already; "
                                                 "pass override=True"):
        register_space("glob_probe")(lambda: None)
    assert space_entry(chain) is _chain

    def wider(width=16):
        return _chain(width)

    register_space(chain, override=True)(wider)
    assert space_entry(chain) is wider and create_space(chain).node("h")["channels"] == 16


def test_list_spaces_filters_with_a_glob(chain):
    assert list_spaces("glob_*") == ["glob_probe"]
    assert list_spaces("*_pro?e") == ["glob_probe"]
    assert list_spaces("probe") == []  # the whole name, not a substring
    assert list_spaces() == SPACES.list() and chain in list_spaces()


def test_an_unknown_space_fails_with_the_registry_message(chain):
    for call in (lambda: create_space("glob_prbe"), lambda: space_entry("glob_prbe"),
                 lambda: space_example("glob_prbe"), lambda: decode("glob_prbe", "x")):
        with pytest.raises(UnknownNameError,
                           match=r"could not resolve space 'glob_prbe' among "
                                 r"\[.*'glob_probe'.*\]; "
                                 r"did you mean 'glob_probe'\? register one with "
                                 r"@supernet.spaces.register_space"):
            call()


def test_a_space_without_example_or_text_form_says_how_to_add_them(chain):
    with pytest.raises(ConfigError, match=r"space 'glob_probe' has no example; add one to its "
                                          r"registration: register_space\('glob_probe', example="):
        space_example(chain)
    with pytest.raises(ConfigError, match=r"space 'glob_probe' has no text form to encode to; "
                                          r"spaces that have one: \[.*'darts'"):
        encode(create_space(chain))
    with pytest.raises(ConfigError, match=r"space 'glob_probe' has no text form to decode from"):
        decode(chain, "anything")
    with pytest.raises(ConfigError, match=r"space 'glob_probe' does not take argument\(s\) "
                                          r"\['depth'\]; it takes \['width'\]"):
        create_space(chain, depth=3)


def test_the_bundled_library_registers_through_the_entry_point_group():
    assert SPACES.entry_points == "supernet.spaces"
    # a fresh interpreter that never imports search_spaces by hand still lists its spaces
    code = ("import sys; from supernet.spaces import list_spaces; names = list_spaces(); "
            "print(names, 'search_spaces' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "'darts'" in out and "'nasbench201'" in out and out.strip().endswith("True")
