"""Where uploaded product images go: the ``Storage`` protocol and the default ``LocalStorage``.

Every upload is checked here first (:func:`read_image`): only JPEG, PNG, WebP, GIF and
plain SVG, recognised by their content rather than their file name, up to
:data:`MAX_IMAGE_BYTES`. A host keeps images elsewhere (a CDN, object storage) by setting
its own backend on the app's koudai state, after ``Koudai(app)``::

    app.extensions["koudai"].storage = MyBucketStorage(...)

where ``MyBucketStorage`` has ``save(stream, filename) -> path`` and ``url(path) -> str``.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import IO, Protocol
from xml.etree import ElementTree

from flask import current_app, url_for
from werkzeug.routing import BuildError
from werkzeug.security import safe_join

from koudai_flask.errors import ValidationError

MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_EXTENSIONS = ("jpg", "png", "webp", "gif", "svg")

_SVG_NS = "{http://www.w3.org/2000/svg}"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
# Elements that run script or embed other documents: never in an image we serve ourselves.
_SVG_FORBIDDEN = {"script", "foreignObject", "iframe", "embed", "object", "handler"}
# CSS that loads another file (url(...) not pointing inside the drawing, @import).
_FETCHES = re.compile(r"url\(\s*['\"]?\s*(?!#)|@import", re.IGNORECASE)


class Storage(Protocol):
    """A place for uploaded files. ``filename`` is a relative path chosen by the caller."""

    def save(self, stream: IO[bytes], filename: str) -> str:
        """Store the stream under ``filename``; return the path to keep in the database."""
        ...

    def url(self, path: str) -> str:
        """The address a browser loads a stored path from."""
        ...


class LocalStorage:
    """Files under the media folder (``KOUDAI_MEDIA_FOLDER``), served by the shop's /media."""

    def __init__(self, folder: str | None = None, endpoint: str = "koudai_shop.media") -> None:
        self.folder = folder
        self.endpoint = endpoint

    def root(self) -> str:
        if self.folder is not None:
            return self.folder
        from koudai_flask.blueprints.shop import media_folder

        return media_folder()

    def save(self, stream: IO[bytes], filename: str) -> str:
        target = safe_join(self.root(), filename)
        if target is None or not filename or filename.startswith("/"):
            raise ValidationError(f"{filename!r} is not a path inside the media folder")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "xb") as fh:  # random names: an existing file is a bug, not a race
            shutil.copyfileobj(stream, fh)
        return filename

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        try:
            return url_for(self.endpoint, filename=path)
        except BuildError:  # shop not registered here: its configured mount point
            return f"{current_app.config['KOUDAI_SHOP_URL_PREFIX'].rstrip('/')}/media/{path}"


def sniff_image(data: bytes) -> str | None:
    """The extension matching the content of ``data`` (one of IMAGE_EXTENSIONS), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "svg" if _is_plain_svg(data) else None


def _is_plain_svg(data: bytes) -> bool:
    """An SVG document without script, event handlers, entities or outside references.

    SVG is a document that can run script when opened from our own origin, so only drawings
    pass; a DOCTYPE is refused outright (entity expansion).
    """
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith((b"<?xml", b"<svg", b"<!--")) or b"<!DOCTYPE" in data.upper():
        return False
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, ValueError):
        return False
    if root.tag not in ("svg", f"{_SVG_NS}svg"):
        return False
    for element in root.iter():
        tag = element.tag.rpartition("}")[2] if isinstance(element.tag, str) else ""
        if tag in _SVG_FORBIDDEN:
            return False
        for name, value in element.attrib.items():
            local = name.rpartition("}")[2].lower()
            if local.startswith("on"):
                return False
            if (name == _XLINK_HREF or local == "href") and not value.startswith("#"):
                return False
            if _FETCHES.search(value):
                return False
        if element.text and _FETCHES.search(element.text):  # <style> fetching other files
            return False
    return True


def read_image(stream: IO[bytes], limit: int = MAX_IMAGE_BYTES) -> tuple[bytes, str]:
    """The bytes of an uploaded image and its extension; ``ValidationError`` otherwise."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValidationError(f"an image may be at most {limit // (1024 * 1024)} MB")
    if not data:
        raise ValidationError("the file is empty")
    extension = sniff_image(data)
    if extension is None:
        raise ValidationError(f"only images ({', '.join(IMAGE_EXTENSIONS)}) can be uploaded")
    return data, extension


__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_BYTES",
    "LocalStorage",
    "Storage",
    "read_image",
    "sniff_image",
]
