"""The colours the shop derives from the owner's: readable for any colour picked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from koudai_flask.services.theme import INK, PAGE, READABLE, Theme, contrast, readable_on

colours = st.integers(min_value=0, max_value=0xFFFFFF).map(lambda v: f"#{v:06x}")


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("#ffffff", "#000000", 21.0),
        ("#000000", "#000000", 1.0),
        ("#767676", "#ffffff", 4.54),  # the usual grey that just passes AA on white
        ("#e4393c", "#ffffff", 4.24),  # a mid red white words do not read on
    ],
)
def test_contrast_is_wcags(first: str, second: str, expected: float) -> None:
    assert contrast(first, second) == pytest.approx(expected, abs=0.01)
    assert contrast(second, first) == contrast(first, second)


@given(colours)
def test_every_derived_colour_reads(colour: str) -> None:
    theme = Theme(name="x", primary_color=colour, logo_url=None)
    assert contrast(theme.accent_ink, PAGE) >= READABLE
    assert contrast(theme.accent_ink, "#ffffff") >= READABLE  # prices on white cards
    assert contrast(theme.on_accent, theme.accent_fill) >= READABLE
    assert contrast(theme.on_accent, theme.accent_deep) >= READABLE  # the banner's far end


def test_a_colour_that_reads_is_kept_as_the_owner_picked_it() -> None:
    green = Theme(name="x", primary_color="#3B6B35", logo_url=None)
    assert (green.accent_ink, green.accent_fill, green.on_accent) == ("#3b6b35",) * 2 + ("#ffffff",)
    yellow = Theme(name="x", primary_color="#ffd400", logo_url=None)
    assert (yellow.accent_fill, yellow.on_accent) == ("#ffd400", INK)  # ink on yellow
    assert readable_on("#ffd400", PAGE) == yellow.accent_ink != "#ffd400"  # darker for text
