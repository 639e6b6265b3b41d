"""The packing slips' Code 128 barcodes, read back by an independent decoder (zxing-cpp).

The SVG is drawn into pixels the way a printer would (one module, three pixels) and
handed to zxing; what it reads must be the text we encoded, for any printable text, and an
order number must stay short enough for a slip.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st

from koudai_flask import barcodes

pytestmark = pytest.mark.services_only

RECT = re.compile(r'<rect x="(\d+)" y="0" width="(\d+)"')
SIZE = re.compile(r'viewBox="0 0 (\d+) (\d+)"')


def pixels(svg: str, scale: int = 3) -> np.ndarray:
    """The barcode's bars, from the SVG's own rectangles, as a grey image."""
    width, height = (int(n) for n in SIZE.search(svg).groups())
    row = np.full(width * scale, 255, dtype=np.uint8)
    for x, w in RECT.findall(svg):
        row[int(x) * scale : (int(x) + int(w)) * scale] = 0
    return np.tile(row, (height, 1))


def read(svg: str) -> list[tuple[str, str]]:
    return [(found.text, found.format.name) for found in zxingcpp.read_barcodes(pixels(svg))]


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=24)
)
def test_any_printable_text_reads_back(text: str) -> None:
    assert read(barcodes.svg(text)) == [(text, "Code128")]


@pytest.mark.parametrize(
    "text",
    ["KD202611275317084758", "1234", "12345", "KD-NOT-1", "A1234567B", "X12345678901", "007"],
)
def test_letters_and_digit_runs_read_back(text: str) -> None:
    assert read(barcodes.svg(text)) == [(text, "Code128")]


def test_an_order_number_packs_its_digits_two_a_symbol() -> None:
    values = barcodes.symbols("KD202611275317084758")
    # Start B, K, D, switch to C, nine digit pairs, check symbol: 14 symbols, 167 modules.
    assert values[:4] == [104, ord("K") - 32, ord("D") - 32, 99]
    assert values[4:13] == [20, 26, 11, 27, 53, 17, 8, 47, 58]
    assert len(values) == 14 and sum(barcodes.modules("KD202611275317084758")) == 167
    # The check symbol of the standard's worked example "PJJ123C" in set B.
    assert barcodes.symbols("PJJ123C")[-1] == 55


@pytest.mark.parametrize("text", ["", "订单", "tab\there"])
def test_text_code_128_cannot_carry_is_refused(text: str) -> None:
    with pytest.raises(barcodes.BarcodeError):
        barcodes.svg(text)
