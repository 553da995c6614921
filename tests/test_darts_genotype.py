"""The DARTS genotype text: read as the DARTS code prints it (``range`` concats included), written back."""

from __future__ import annotations

import pytest

from search_spaces._darts_genotype import format_genotype, parse_genotype

# DARTS V2 as the DARTS search prints a derived genotype (model_search.py: concat = range(2, 6)).
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=range(2, 6), "
            "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
            "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))")


# `DARTS` of the DARTS code's genotypes.py, as it is written there (list concats).
DARTS = ("Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
         "('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
         "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
         "('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])")


def test_a_genotype_written_with_lists_comes_back_character_for_character():
    assert format_genotype(**parse_genotype(DARTS)) == DARTS


def test_darts_v2_parses_and_formats_back_as_darts_prints_it():
    g = parse_genotype(DARTS_V2)
    assert g["normal"][:2] == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1)) and len(g["reduce"]) == 8
    assert g["normal_concat"] == (2, 3, 4, 5) == g["reduce_concat"]
    text = format_genotype(**g)
    assert text == DARTS_V2.replace("range(2, 6)", "[2, 3, 4, 5]")
    assert parse_genotype(text) == g


@pytest.mark.parametrize("text, message", [
    ("Genotype(normal=[", "does not parse"),
    ("Geno(normal=[], normal_concat=[], reduce=[], reduce_concat=[])", "must be a call Genotype"),
    ("Genotype(normal=[], reduce=[], reduce_concat=[])", "exactly the fields"),
    ("Genotype(normal=[('a', 'b')], normal_concat=[2], reduce=[], reduce_concat=[2])", "`normal` must be a list of \\(op, input\\) pairs"),
    ("Genotype(normal=[], normal_concat=range(x), reduce=[], reduce_concat=[2])", "`normal_concat` must be a list of state indices"),
    ("Genotype(normal=__import__('os'), normal_concat=[2], reduce=[], reduce_concat=[2])", "`normal` must be a list"),
])
def test_malformed_genotypes_are_refused_without_evaluating_them(text, message):
    with pytest.raises(ValueError, match=message):
        parse_genotype(text)
