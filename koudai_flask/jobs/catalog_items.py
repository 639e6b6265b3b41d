"""One Taobao item made ready for the catalog import: its record mapped, its pictures fetched.

The mapper turns TOP's item (``item.seller.get``) into the plain record of
:mod:`koudai_flask.services.catalog_import_records`: the HTML description as text, the title
trimmed, an item without SKUs as its own SKU. :class:`PictureFetcher` downloads the pictures
of an item not bound yet, with a timeout and a size cap. Neither touches the database; the
job that runs them one item at a time is :mod:`koudai_flask.jobs.catalog_import`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from html.parser import HTMLParser
from urllib.parse import urlsplit

import requests

from koudai_flask.connectors.errors import TemporaryFailure
from koudai_flask.connectors.taobao.records import Item
from koudai_flask.services.catalog_import_records import MAX_PICTURES, ImportedItem, ImportedSku
from koudai_flask.storage import MAX_IMAGE_BYTES, sniff_image

log = logging.getLogger("koudai_flask.sync")

PICTURE_TIMEOUT = 10.0  # seconds per connect / read of one picture
PICTURE_DEADLINE = 30.0  # seconds for one picture in all
MAX_TITLE = 200  # our product titles; Taobao's are at most 60 characters anyway
# Statuses after which a picture is gone for good: import the item without it.
_PICTURE_GONE = frozenset({400, 401, 403, 404, 410, 451})


# -- mapping TOP's item onto plain records ---------------------------------------------------


class _TextOf(HTMLParser):
    """The text of an HTML description, one line per block (Taobao's ``desc`` is HTML;
    our description is plain text, escaped where it is shown)."""

    BLOCKS = frozenset({"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})
    HIDDEN = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def plain_text(html: str) -> str:
    """``<p>纯棉T恤</p><p>品牌 口袋小铺</p>`` → ``"纯棉T恤\\n品牌 口袋小铺"``."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def map_item(item: Item, images: Iterable[tuple[bytes, str]] = ()) -> ImportedItem:
    """TOP's item as the import service's record; an item without SKUs is its own SKU."""
    skus = tuple(
        ImportedSku(
            sku_id=sku.sku_id,
            outer_id=sku.outer_id,
            attributes=sku.attributes,
            price_fen=sku.price_fen if sku.price else item.price_fen,
            quantity=sku.quantity,
        )
        for sku in item.skus
    ) or (ImportedSku(None, item.outer_id, (), item.price_fen, item.num),)
    return ImportedItem(
        num_iid=item.num_iid,
        title=" ".join(item.title.split())[:MAX_TITLE],
        desc=plain_text(item.desc),
        price_fen=item.price_fen,
        modified=item.modified,
        skus=skus,
        images=tuple(images),
    )


def picture_urls(item: Item) -> list[str]:
    """The item's pictures in TOP's position order (the main picture alone when no list)."""
    urls = list(item.item_imgs) or ([item.pic_url] if item.pic_url else [])
    return list(dict.fromkeys(urls))[:MAX_PICTURES]


# -- pictures --------------------------------------------------------------------------------


class PictureFetcher:
    """Downloads item pictures over HTTP: a timeout, a size cap, only real images.

    A picture that is gone, too large or not an image is left out (and logged); a network
    failure or a server error raises ``TemporaryFailure`` before the item is applied, so
    the retry imports it with its pictures.
    """

    def __init__(self, timeout: float = PICTURE_TIMEOUT, limit: int = MAX_IMAGE_BYTES) -> None:
        self.timeout = timeout
        self.limit = limit
        self.http = requests.Session()

    def close(self) -> None:
        self.http.close()

    def fetch(self, url: str) -> tuple[bytes, str] | None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            log.warning("catalog import: picture %r is not an http(s) address: left out", url)
            return None
        try:
            data = self._download(url)
        except requests.RequestException as exc:
            raise TemporaryFailure(f"picture {url}: {type(exc).__name__}") from exc
        if data is None:
            return None
        if sniff_image(data) is None:
            log.warning("catalog import: picture %s is not an image: left out", url)
            return None
        return data, parts.path.rsplit("/", 1)[-1] or "picture"

    def _download(self, url: str) -> bytes | None:
        deadline = time.monotonic() + PICTURE_DEADLINE
        with self.http.get(url, timeout=self.timeout, stream=True) as response:
            if response.status_code in _PICTURE_GONE:
                log.warning(
                    "catalog import: picture %s: HTTP %s: left out", url, response.status_code
                )
                return None
            if response.status_code != 200:
                raise TemporaryFailure(f"picture {url}: HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.limit:
                log.warning("catalog import: picture %s is %s bytes: left out", url, declared)
                return None
            data = bytearray()
            for chunk in response.iter_content(64 * 1024):
                data += chunk
                if len(data) > self.limit:
                    log.warning("catalog import: picture %s is over the size cap: left out", url)
                    return None
                if time.monotonic() > deadline:
                    raise TemporaryFailure(f"picture {url}: slower than {PICTURE_DEADLINE:.0f} s")
            return bytes(data)

    def fetch_all(self, urls: Iterable[str]) -> list[tuple[bytes, str]]:
        return [picture for url in urls if (picture := self.fetch(url)) is not None]
