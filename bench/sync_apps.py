"""What the sync benchmark's processes share: the app, a linked sandbox shop, the no-op job.

``bench/sync.py`` builds its own app with :func:`bench_app`; the worker processes it starts
run ``flask --app 'bench.sync_apps:worker_app()' koudai worker`` and read the same settings
from the environment (:data:`ENV_URL`, :data:`ENV_REDIS`, :data:`ENV_QUEUE`,
:data:`ENV_SECRET`). :func:`noop` is the empty job of the latency baseline.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from koudai_flask import Koudai
from koudai_flask.connectors.sandbox.taobao import TaobaoSandbox
from koudai_flask.connectors.taobao.oauth import OAuthToken
from koudai_flask.connectors.taobao.tokens import seal_token
from koudai_flask.services import channels

ENV_URL = "KOUDAI_BENCH_SYNC_DATABASE_URI"  # the run's schema first on the search path
ENV_REDIS = "KOUDAI_BENCH_SYNC_REDIS_URL"
ENV_QUEUE = "KOUDAI_BENCH_SYNC_QUEUE"
ENV_SECRET = "KOUDAI_BENCH_SYNC_SECRET_KEY"
NOOP = "bench.sync_apps.noop"  # how a worker (started in the checkout's root) imports it


def bench_app(name: str, database_uri: str, secret_key: str, **config: Any) -> Flask:
    """A host site whose only extension is koudai; everything else keeps its default."""
    app = Flask(name)
    app.config.update(SECRET_KEY=secret_key, KOUDAI_DATABASE_URI=database_uri, **config)
    Koudai(app)
    return app


def _environ(name: str) -> str:
    try:
        return os.environ[name]
    except KeyError:
        raise RuntimeError(f"set {name} (bench/sync.py sets it for its workers)") from None


def worker_app() -> Flask:
    """The app of a ``flask koudai worker`` process: RQ on the run's Redis and queue name."""
    queue = _environ(ENV_QUEUE)
    return bench_app(
        queue,  # the worker's cron scheduler is named after the app: one name per run
        _environ(ENV_URL),
        _environ(ENV_SECRET),
        KOUDAI_JOBS="rq",
        KOUDAI_REDIS_URL=_environ(ENV_REDIS),
        KOUDAI_QUEUE_NAME=queue,
    )


def noop() -> None:
    """The empty job: what one RQ round trip costs with nothing to do."""


def link_sandbox(app: Flask, sandbox: TaobaoSandbox, name: str) -> int:
    """A Taobao channel authorised on ``sandbox`` (its tokens sealed as the OAuth callback
    seals them); returns the channel id. Call inside an app context."""
    grant = sandbox.issue_session()
    token = OAuthToken(
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        expires_in=86400,
        re_expires_in=86400 * 30,
        taobao_user_id=str(grant.user_id),
        taobao_user_nick=grant.user_nick,
    )
    settings = {
        **sandbox.settings_for_client(),
        **seal_token(str(app.config["SECRET_KEY"]), token),
    }
    return channels.create("taobao", name, settings=settings).id
