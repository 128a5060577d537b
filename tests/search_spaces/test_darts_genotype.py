"""Genotype text: exact round trips, the forms the DARTS code writes, and clear errors."""

import pytest

from search_spaces.darts import PUBLISHED, Genotype, parse_genotype
from supernet.errors import GenotypeError

V2 = PUBLISHED["DARTS_V2"]["genotype"]

# NASNet-A as the DARTS repository writes it: keywords with spaces, one pair a line,
# trailing commas.
NASNET_MULTILINE = """Genotype(
  normal = [
    ('sep_conv_5x5', 1),
    ('sep_conv_3x3', 0),
    ('sep_conv_5x5', 0),
    ('sep_conv_3x3', 0),
    ('avg_pool_3x3', 1),
    ('skip_connect', 0),
    ('avg_pool_3x3', 0),
    ('avg_pool_3x3', 0),
    ('sep_conv_3x3', 1),
    ('skip_connect', 1),
  ],
  normal_concat = [2, 3, 4, 5, 6],
  reduce = [
    ('sep_conv_5x5', 1),
    ('sep_conv_7x7', 0),
    ('max_pool_3x3', 1),
    ('sep_conv_7x7', 0),
    ('avg_pool_3x3', 1),
    ('sep_conv_5x5', 0),
    ('skip_connect', 3),
    ('avg_pool_3x3', 2),
    ('sep_conv_3x3', 2),
    ('max_pool_3x3', 1),
  ],
  reduce_concat = [4, 5, 6],
)"""


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_text_round_trips_exactly(name):
    text = PUBLISHED[name]["genotype"]
    assert str(parse_genotype(text)) == text


def test_str_is_the_namedtuple_form_of_the_reference():
    # The DARTS code prints a namedtuple: str() of its fields, keyword form.
    from collections import namedtuple

    Ref = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
    for name in PUBLISHED:
        g = parse_genotype(PUBLISHED[name]["genotype"])
        ref = Ref(g.normal, g.normal_concat, g.reduce, g.reduce_concat)
        assert str(g) == str(ref)


def test_range_and_list_forms_are_kept():
    g = parse_genotype(PUBLISHED["PC_DARTS"]["genotype"])
    assert isinstance(g.normal_concat, range) and g.concat("normal") == [2, 3, 4, 5]
    assert "normal_concat=range(2, 6)" in str(g)
    assert "normal_concat=[2, 3, 4, 5]" in str(parse_genotype(V2))
    stepped = V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6, 2)")
    assert str(parse_genotype(stepped)) == stepped


def test_multiline_source_form_parses():
    g = parse_genotype(NASNET_MULTILINE)
    assert str(g) == PUBLISHED["NASNet"]["genotype"]
    assert g.steps("normal") == 5 and g.concat("reduce") == [4, 5, 6]


def test_positional_fields_double_quotes_and_lists_as_pairs():
    g = parse_genotype(V2)
    text = (f'Genotype({[list(p) for p in g.normal]}, [2, 3, 4, 5], '
            f'{g.reduce}, range(2, 6))').replace("'", '"')
    parsed = parse_genotype(text)
    assert parsed.normal == g.normal and parsed.reduce == g.reduce
    assert parsed.reduce_concat == range(2, 6)


def test_no_eval_of_arbitrary_code():
    with pytest.raises(GenotypeError, match=r"unexpected '__import__'"):
        parse_genotype("Genotype(normal=__import__('os').system('true'), normal_concat=[2], "
                       "reduce=[], reduce_concat=[2])")


@pytest.mark.parametrize("text, match", [
    ("Genotyp(normal=[])", r"unexpected 'Genotyp' at character 0; expected 'Genotype\('"),
    (V2[:-1], r"unexpected 'end of text' .* expected ',' or '\)'"),
    (V2 + " extra", r"unexpected 'extra' .* expected the end of the text"),
    (V2.replace("normal_concat", "normal_cat"), r"unknown field 'normal_cat' .* accepted fields"),
    (V2.replace(", reduce_concat=[2, 3, 4, 5]", ""), r"missing field\(s\) \['reduce_concat'\]"),
    (V2.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3'; 0)", 1), r"unexpected ';'"),
    (V2.replace("range", "rang").replace("[2, 3, 4, 5])", "rang(2, 6))"), r"unexpected 'rang'"),
])
def test_malformed_text_quotes_the_token(text, match):
    with pytest.raises(GenotypeError, match=match):
        parse_genotype(text)


def test_unknown_op_lists_accepted():
    text = V2.replace("dil_conv_3x3", "dil_conv_9x9")
    with pytest.raises(GenotypeError, match=r"normal\[7\] \('dil_conv_9x9', 2\): unknown op "
                                            r"'dil_conv_9x9'; accepted: \['none', 'max_pool_3x3'"):
        parse_genotype(text)
    # an op that exists but is no cell op (no stride) is refused too
    with pytest.raises(GenotypeError, match="unknown op 'classifier'"):
        parse_genotype(V2.replace("dil_conv_3x3", "classifier"))


@pytest.mark.parametrize("text, match", [
    (V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"),
     r"normal\[7\] \('dil_conv_3x3', 5\): node 5 cannot take input 5; accepted inputs are "
     r"\[0, 1, 2, 3, 4\]"),
    (V2.replace(", ('dil_conv_3x3', 2)", ""), r"7 \(op, input\) pair\(s\); .* even number"),
    (V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 7]"),
     r"normal_concat \[2, 3, 7\]: 7 is not a node of the cell; accepted: \[0, 1, 2, 3, 4, 5\]"),
    (V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 2]"), r"lists \[2\] twice"),
    (V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[]"), r"normal_concat \[\]: empty"),
    (V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 2, 0)"),
     r"normal\[7\] \('dil_conv_3x3', 2, 0\): expected a pair"),
    (V2.replace("('dil_conv_3x3', 2)", "'dil_conv_3x3'"), r"normal\[7\] 'dil_conv_3x3': expected"),
])
def test_impossible_cells_are_refused(text, match):
    with pytest.raises(GenotypeError, match=match):
        parse_genotype(text)


def test_constructed_genotype_is_validated():
    g = Genotype([("skip_connect", 0), ("sep_conv_3x3", 1)], [2], [("max_pool_3x3", 0),
                 ("max_pool_3x3", 1)], range(2, 3))
    assert str(parse_genotype(str(g))) == str(g)
    with pytest.raises(GenotypeError, match="cannot take input 3"):
        Genotype([("skip_connect", 3), ("sep_conv_3x3", 1)], [2], g.reduce, [2])


def test_cells_are_their_authors():
    # D-X-Y/AutoDL-Projects DXYs/genotypes.py GDAS_V1: the last reduce step reads input 1
    assert parse_genotype(PUBLISHED["GDAS"]["genotype"]).reduce[-2:] == [
        ("sep_conv_5x5", 0), ("sep_conv_5x5", 1)]
    # SNAS-Series SNAS/genotypes.py SNAS_mild, node 4 of both cells in the authors' order
    mild = parse_genotype(PUBLISHED["SNAS_mild"]["genotype"])
    assert mild.normal[4:6] == [("skip_connect", 0), ("skip_connect", 1)]
    assert mild.reduce[4:6] == [("max_pool_3x3", 1), ("skip_connect", 2)]
    assert PUBLISHED["SNAS"]["genotype"] == PUBLISHED["SNAS_moderate"]["genotype"]
    assert all(" " in PUBLISHED[n]["source"] and "/" in PUBLISHED[n]["source"]
               for n in PUBLISHED)  # every entry names a repository and file
