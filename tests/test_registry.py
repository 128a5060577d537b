"""The one registry helper: duplicates refused unless overridden, one glob filter, one message
for an unknown name, entry-point plugins loaded on a miss, and the mapping view."""

import importlib.metadata

import pytest

from supernet.errors import DuplicateNameError, UnknownNameError
from supernet.registry import Registry, decorator


@pytest.fixture
def colors():
    reg = Registry("color", hint="register one with colors.register")
    reg.register("red", "#f00")
    reg.register("green", "#0f0")
    reg.register("grey", "#888")
    return reg


def test_register_directly_or_as_decorator_returns_the_object():
    reg = Registry("fn")

    def f():
        return 1

    assert reg.register("f", f) is f

    @reg.register("g")
    def g():
        return 2

    assert g() == 2 and reg.resolve("g") is g and reg.resolve("f") is f
    assert reg.register("none", None) is None and reg.resolve("none") is None


def test_a_duplicate_is_refused_and_override_replaces(colors):
    with pytest.raises(DuplicateNameError,
                       match=r"color 'red' is registered already; pass override=True to replace"):
        colors.register("red", "#e00")
    with pytest.raises(DuplicateNameError, match="color 'red' is registered already"):
        colors.register("red")(lambda: None)
    assert colors.resolve("red") == "#f00"  # a refused registration changes nothing
    colors.register("red", "#e00", override=True)
    assert colors.resolve("red") == "#e00" and colors.list().count("red") == 1


def test_a_name_is_a_non_empty_string():
    reg = Registry("color")
    for bad in ("", 3, None):
        with pytest.raises(UnknownNameError, match=r"color names are non-empty strings, got"):
            reg.register(bad, object())
    assert reg.list() == []


def test_list_filters_with_one_shell_glob(colors):
    assert colors.list() == ["green", "grey", "red"]
    assert colors.list("g*") == ["green", "grey"]
    assert colors.list("gr?y") == ["grey"]
    assert colors.list("*e*") == ["green", "grey", "red"]
    assert colors.list("[!g]*") == ["red"]
    assert colors.list("re") == []  # a glob matches the whole name, not a substring
    assert colors.list("G*") == []  # and is case-sensitive
    assert colors.items() == [("green", "#0f0"), ("grey", "#888"), ("red", "#f00")]
    assert list(colors) == colors.list() and len(colors) == 3


def test_an_unknown_name_lists_the_choices_suggests_one_and_says_how_to_add_one(colors):
    with pytest.raises(UnknownNameError) as err:
        colors.resolve("rde", where="palette: swatch 3")
    assert str(err.value) == (
        "palette: swatch 3: could not resolve color 'rde' among ['green', 'grey', 'red']; "
        "did you mean 'red'? register one with colors.register"
    )
    assert isinstance(err.value, KeyError)  # a registry reads like a mapping
    with pytest.raises(UnknownNameError) as err:
        colors.resolve("blue")
    assert str(err.value) == (
        "could not resolve color 'blue' among ['green', 'grey', 'red']; "
        "register one with colors.register"
    )
    bare = Registry("shape")
    bare.register("square", 4)
    assert bare.unknown("circle") == "could not resolve shape 'circle' among ['square']"
    assert bare.unknown("squre") == (
        "could not resolve shape 'squre' among ['square']; did you mean 'square'?")


def test_unhashable_or_missing_names_are_not_there(colors):
    assert "red" in colors and "blue" not in colors and ["red"] not in colors
    with pytest.raises(UnknownNameError, match=r"could not resolve color \['red'\]"):
        colors.resolve(["red"])
    assert colors.get("red") == "#f00" and colors.get("blue") is None
    assert colors.get("blue", "#00f") == "#00f"


def test_the_mapping_view(colors):
    assert colors["red"] == "#f00"
    with pytest.raises(UnknownNameError, match="did you mean 'red'"):
        colors["rde"]
    colors["blue"] = "#00f"
    assert colors.resolve("blue") == "#00f"
    with pytest.raises(DuplicateNameError, match="color 'blue' is registered already"):
        colors["blue"] = "#00e"
    del colors["blue"]
    assert "blue" not in colors and sorted(colors) == ["green", "grey", "red"]


def test_unregister_returns_the_entry_and_fails_for_a_missing_name(colors):
    assert colors.unregister("grey") == "#888"
    assert colors.list() == ["green", "red"]
    with pytest.raises(UnknownNameError, match=r"could not resolve color 'grey' among "
                                               r"\['green', 'red'\]"):
        colors.unregister("grey")
    colors.register("grey", "#777")  # the name is free again
    assert colors.resolve("grey") == "#777"


def test_decorator_stores_the_transform_and_returns_the_object():
    reg = Registry("thing")
    register_thing = decorator(reg)
    register_wrapped = decorator(reg, transform=lambda name, obj: (name, obj))

    @register_thing("a")
    def a():
        pass

    @register_wrapped("b")
    def b():
        pass

    assert reg.resolve("a") is a and reg.resolve("b") == ("b", b)
    with pytest.raises(DuplicateNameError, match="thing 'a' is registered already"):
        register_thing("a")(b)
    register_thing("a", override=True)(b)
    assert reg.resolve("a") is b


class _EntryPoint:
    """What ``importlib.metadata.entry_points`` yields: a name, a value and ``load()``."""

    def __init__(self, name, load):
        self.name, self.value, self._load = name, f"pkg_{name}", load

    def load(self):
        return self._load()


@pytest.fixture
def plugins(monkeypatch):
    """A fake entry-point group ``test.colors`` whose one module registers 'teal'."""
    reg = Registry("color", hint="install a color package", entry_points="test.colors")
    calls = []

    def entry_points(group):
        calls.append(group)
        if group != "test.colors":
            return []
        return [_EntryPoint("teal", lambda: reg.register("teal", "#088"))]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return reg, calls


def test_entry_points_are_loaded_once_on_the_first_miss(plugins):
    reg, calls = plugins
    reg.register("red", "#f00")
    assert reg.resolve("red") == "#f00" and calls == []  # a hit needs no plugin
    assert reg.resolve("teal") == "#088" and calls == ["test.colors"]
    with pytest.raises(UnknownNameError, match=r"'blue' among \['red', 'teal'\]; install a"):
        reg.resolve("blue")
    assert calls == ["test.colors"]  # the group is read once


@pytest.mark.parametrize("read", [lambda r: r.list(), lambda r: "teal" in r, len,
                                  lambda r: r.items(), lambda r: r.get("teal")])
def test_listing_or_looking_up_loads_the_entry_points(plugins, read):
    reg, calls = plugins
    read(reg)
    assert calls == ["test.colors"] and "teal" in reg._entries


def test_a_broken_entry_point_warns_and_is_named_by_the_unknown_name_error(monkeypatch):
    reg = Registry("color", entry_points="test.colors")

    def broken():
        raise ImportError("no module named 'pkg_bad'")

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [
        _EntryPoint("bad", broken), _EntryPoint("teal", lambda: reg.register("teal", "#088"))])
    with pytest.warns(UserWarning, match=r"color registry: entry point bad = pkg_bad: "
                                         r"ImportError\(\"no module named 'pkg_bad'\"\)"):
        assert reg.list() == ["teal"]  # the other plugins still load
    with pytest.raises(UnknownNameError, match=r"could not resolve color 'navy' among \['teal'\] "
                                               r"\(entry point\(s\) of group 'test.colors' failed "
                                               r"to load: bad = pkg_bad: ImportError"):
        reg.resolve("navy")


def test_without_a_group_no_entry_point_is_read(monkeypatch):
    def entry_points(group):
        raise AssertionError("read entry points of a registry without a group")

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    reg = Registry("color")
    assert reg.list() == [] and "red" not in reg
    with pytest.raises(UnknownNameError, match="could not resolve color 'red' among"):
        reg.resolve("red")
