"""Every registered lint rule, over the registry's own listing: it finds nothing on a small
valid graph of its level and names the node on a broken one. And the registry itself: one rule
per level unless overridden, ``bind`` reaches the rule, an unknown level fails with the
registry message."""

import pytest
from level_graphs import broken_graph, small_graph

from supernet.errors import DuplicateNameError, LintError, UnknownNameError
from supernet.lint import LINT_RULES, lint, register_lint
from supernet.schema import LEVELS


def test_every_level_has_a_lint_rule():
    assert LINT_RULES.list() == sorted(LEVELS)


@pytest.mark.parametrize("level", LINT_RULES.list())
def test_every_rule_passes_a_valid_graph_of_its_level(level):
    graph, _ = small_graph(level)
    assert LINT_RULES.resolve(level)(graph) == []
    lint(graph)


@pytest.mark.parametrize("level", LINT_RULES.list())
def test_every_rule_names_the_node_of_a_broken_graph(level):
    graph, node = broken_graph(level)
    problems = LINT_RULES.resolve(level)(graph)
    assert problems and all(f"node {node!r}" in p for p in problems), problems
    with pytest.raises(LintError, match=rf"{graph.name}: 1 problem\(s\) found\n  - "
                                        rf"{graph.name}: node {node!r}"):
        lint(graph)


def test_a_second_rule_of_a_level_is_refused_unless_overridden():
    neuron = LINT_RULES.resolve("neuron")
    with pytest.raises(DuplicateNameError, match="lint rule of level 'neuron' is registered "
                                                 "already; pass override=True"):
        register_lint("neuron")(lambda graph: [])
    assert LINT_RULES.resolve("neuron") is neuron
    calls = []

    def strict(graph, bind=None):
        calls.append(bind)
        return [f"{graph.name}: node 'y': too few units"]

    graph, _ = small_graph("neuron")
    try:
        assert register_lint("neuron", override=True)(strict) is strict
        with pytest.raises(LintError, match="node 'y': too few units"):
            lint(graph)
        with pytest.raises(LintError, match="node 'y': too few units"):
            lint(graph, bind={"C": 4})
        assert calls == [None, {"C": 4}]
        register_lint("neuron", override=True)(lambda g: [])  # a rule that takes no bind
        lint(graph)
    finally:
        register_lint("neuron", override=True)(neuron)
    lint(graph)


def test_a_level_without_a_rule_fails_with_the_registry_message():
    graph, _ = small_graph("channel")
    channel = LINT_RULES.unregister("channel")
    try:
        with pytest.raises(UnknownNameError,
                           match=r"cnn: could not resolve lint rule of level 'channel' among "
                                 r"\['layer', 'neuron'\]; register one with "
                                 r"@supernet.lint.register_lint\(level\)"):
            lint(graph)
    finally:
        register_lint("channel")(channel)
    lint(graph)
