"""Code 128 barcodes as inline SVG, for the order number on a packing slip.

A warehouse scanner reads the slip's barcode into the order list's search box (or any
field), so nobody types an 18-digit order number. Code 128 is what Chinese couriers and
scanners read everywhere; letters go in code set B and a long run of digits in code set C
(two digits a symbol), which keeps ``KD`` + 18 digits short enough for a slip.

Each symbol is three bars and three spaces, 11 modules wide; the stop symbol has a fourth
bar (13 modules). The widths below are the standard's table, values 0 to 105.
"""

from __future__ import annotations

from markupsafe import Markup

# Value 0 to 105, one pattern each: bar, space, bar, space, bar, space widths.
_TABLE = (
    "212222 222122 222221 121223 121322 131222 122213 122312 132212 221213 "
    "221312 231212 112232 122132 122231 113222 123122 123221 223211 221132 "
    "221231 213212 223112 312131 311222 321122 321221 312212 322112 322211 "
    "212123 212321 232121 111323 131123 131321 112313 132113 132311 211313 "
    "231113 231311 112133 112331 132131 113123 113321 133121 313121 211331 "
    "231131 213113 213311 213131 311123 311321 331121 312113 312311 332111 "
    "314111 221411 431111 111224 111422 121124 121421 141122 141221 112214 "
    "112412 122114 122411 142112 142211 241211 221114 413111 241112 134111 "
    "111242 121142 121241 114212 124112 124211 411212 421112 421211 212141 "
    "214121 412121 111143 111341 131141 114113 114311 411113 411311 113141 "
    "114131 311141 411131 211412 211214 211232"
)
_PATTERNS = _TABLE.split()
_STOP = "2331112"
_START_B, _START_C, _TO_C, _TO_B = 104, 105, 99, 100
QUIET = 10  # modules of white each side, as the standard asks


class BarcodeError(ValueError):
    """Text that Code 128 set B cannot carry (only printable ASCII)."""


def _digits_from(text: str, start: int) -> int:
    end = start
    while end < len(text) and text[end].isdigit():
        end += 1
    return end - start


def symbols(text: str) -> list[int]:
    """The symbol values of ``text``: start, data, check symbol (the stop is not a value)."""
    if not text or any(not 32 <= ord(ch) <= 126 for ch in text):
        raise BarcodeError(f"Code 128 carries printable ASCII only, not {text!r}")
    in_c = len(text) >= 4 and len(text) % 2 == 0 and text.isdigit()
    values = [_START_C if in_c else _START_B]
    index = 0
    while index < len(text):
        run = _digits_from(text, index)
        if not in_c and run >= 6:
            if run % 2:  # an odd run: its first digit in set B, the pairs in set C
                values.append(ord(text[index]) - 32)
                index += 1
            values.append(_TO_C)
            in_c = True
            continue
        if in_c and run >= 2:
            values.append(int(text[index : index + 2]))
            index += 2
            continue
        if in_c:
            values.append(_TO_B)
            in_c = False
        values.append(ord(text[index]) - 32)
        index += 1
    check = (values[0] + sum(i * v for i, v in enumerate(values[1:], start=1))) % 103
    return [*values, check]


def modules(text: str) -> list[int]:
    """Bar and space widths in modules, bar first, without the quiet zones."""
    widths = [int(w) for value in symbols(text) for w in _PATTERNS[value]]
    return widths + [int(w) for w in _STOP]


def svg(text: str, *, height: int = 48) -> Markup:
    """An inline SVG of ``text`` in Code 128: one user unit per module, black on white."""
    x = QUIET
    bars = []
    for i, width in enumerate(modules(text)):
        if i % 2 == 0:
            bars.append(f'<rect x="{x}" y="0" width="{width}" height="{height}"/>')
        x += width
    total = x + QUIET
    return Markup(
        f'<svg class="kd-barcode" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {total} {height}" width="{total * 2}" height="{height}" '
        f'preserveAspectRatio="none" shape-rendering="crispEdges" role="img" '
        f'aria-label="{Markup.escape(text)}"><rect width="{total}" height="{height}" '
        f'fill="#fff"/><g fill="#000">{"".join(bars)}</g></svg>'
    )


__all__ = ["QUIET", "BarcodeError", "modules", "svg", "symbols"]
