"""A big download with a strong ETag, without holding it in memory.

An export is written to a spooled temporary file (in memory up to ``SPOOL_IN_MEMORY``, then
on disk) and hashed as it is written; the response then streams the file. So a segment of
a hundred thousand customers costs a batch of rows in memory, not the whole CSV twice, and
``If-None-Match`` still answers 304 when nothing changed.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

from flask import Response, request

SPOOL_IN_MEMORY = 1024 * 1024  # bytes kept in memory before the file moves to disk
READ_SIZE = 64 * 1024


class _SpooledBody:
    """The file as a WSGI body: closed once read to the end, or when the server closes it."""

    def __init__(self, spool: IO[bytes]) -> None:
        self.spool = spool

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self.spool.read(READ_SIZE):
                yield chunk
        finally:
            self.spool.close()

    def close(self) -> None:
        self.spool.close()


def spooled_response(chunks: Iterable[str], *, mimetype: str) -> Response:
    """``chunks`` (UTF-8 text) as a response streamed from a spooled file, with its ETag;
    304 with no body when the request's ``If-None-Match`` names that ETag."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by the body
    try:
        digest = hashlib.sha1(usedforsecurity=False)
        size = 0
        for chunk in chunks:
            data = chunk.encode("utf-8")
            digest.update(data)
            spool.write(data)
            size += len(data)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    etag = digest.hexdigest()
    if request.if_none_match.contains_weak(etag):  # If-None-Match compares weakly (RFC 9110)
        spool.close()
        response = Response(status=304)
    else:
        response = Response(_SpooledBody(spool), mimetype=mimetype, direct_passthrough=True)
        response.content_length = size
    response.set_etag(etag)
    return response
