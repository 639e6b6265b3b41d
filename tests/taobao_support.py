"""Fixtures shared by the Taobao adapter and sandbox tests: a sandbox, a session, clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.taobao import TaobaoAdapter, TopClient

ClientFactory = Callable[..., TopClient]


@pytest.fixture
def sandbox() -> Iterator[TaobaoSandbox]:
    server = TaobaoSandbox(visibility_timeout=30.0, ban_seconds=5)
    yield server
    server.stop()


@pytest.fixture
def session(sandbox: TaobaoSandbox) -> str:
    return sandbox.issue_session().access_token


@pytest.fixture
def make_client(sandbox: TaobaoSandbox, session: str) -> Iterator[ClientFactory]:
    """``make_client(**options)``: a TopClient on the sandbox, closed after the test."""
    clients: list[TopClient] = []

    def factory(**options: Any) -> TopClient:
        options.setdefault("session", session)
        options.setdefault("timeout", 5.0)
        client = TopClient(sandbox.gateway_url, sandbox.app_key, sandbox.app_secret, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def adapter(make_client: ClientFactory) -> TaobaoAdapter:
    return TaobaoAdapter(make_client())


__all__ = ["ClientFactory", "adapter", "make_client", "sandbox", "session"]
