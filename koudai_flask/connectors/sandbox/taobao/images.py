"""Small generated PNG pictures for sandbox items, so an importer has real images to fetch.

Each picture is drawn from its name alone (a colour and a stripe pattern from its hash, the
name itself in a ``tEXt`` chunk), so two names never give the same bytes and a restarted
sandbox serves the same picture under the same URL.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib

SIZE = 48  # pixels, square
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def valid_name(name: str) -> bool:
    """Picture names are plain URL path segments: letters, digits, ``-`` and ``_``."""
    return bool(NAME.match(name))


def png_bytes(name: str) -> bytes:
    """A ``SIZE``×``SIZE`` RGB PNG for ``name``: a background colour, diagonal stripes."""
    if not valid_name(name):
        raise ValueError(f"picture name {name!r}: use letters, digits, '-' and '_' only")
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    background, stripe = digest[0:3], digest[3:6]
    width = 3 + digest[6] % 6
    rows = bytearray()
    for y in range(SIZE):
        rows.append(0)  # filter type 0 (None) for every scanline
        for x in range(SIZE):
            rows += stripe if ((x + y) // width) % 2 else background
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"tEXt", b"Title\x00" + name.encode("ascii"))
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )


__all__ = ["SIZE", "png_bytes", "valid_name"]
