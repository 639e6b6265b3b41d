"""The ``Koudai`` Flask extension: configuration, database wiring, blueprints and CLI.

The extension object keeps no app (``self.app`` is never set); everything per app lives in
``app.extensions["koudai"]`` as a :class:`KoudaiState`, so one ``Koudai()`` can serve
several apps with different configurations in one process.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, g
from flask.globals import _cv_app
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from koudai_flask import config as koudai_config
from koudai_flask.errors import ConfigError, KoudaiError
from koudai_flask.storage import LocalStorage, Storage

OutboxHandler = Callable[[str, dict[str, Any]], None]


class KoudaiState:
    """What koudai knows about one app: its session source, jobs mode and subscribers."""

    def __init__(self, app: Flask, db: Any | None) -> None:
        self.db = db
        self.engine: Engine | None = None
        self._own_session: scoped_session[Session] | None = None
        self.handlers: dict[str, list[OutboxHandler]] = defaultdict(list)
        self.redis: Any = None
        self.job_class: Any = None
        self.inline_schedule: Any = None
        # Set to stop this app's background threads (the inline schedule thread).
        self.stop_background = threading.Event()
        # Run by stop(), before the threads are told to end (the funnel writes its buffer).
        self.on_stop: list[Callable[[Flask], None]] = []
        # Where uploaded images go; a host may set its own Storage after init_app.
        self.storage: Storage = LocalStorage()
        if db is None:
            self.engine = _create_own_engine(app)
            factory = sessionmaker(bind=self.engine, expire_on_commit=False)
            self._own_session = scoped_session(factory, scopefunc=_app_context_id)
        self._read_engine: Engine | None = None

    def read_connection(self) -> Connection:
        """This app context's connection for pages' reads, closed when the context ends.

        Autocommit, so no BEGIN and no ROLLBACK round trip; a page that reads plain rows
        sets up no ORM session at all.
        """
        connection: Connection | None = g.get(_READ_CONNECTION)
        if connection is None:
            if self._read_engine is None:
                engine = self.get_engine()
                self._read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
            connection = self._read_engine.connect()
            setattr(g, _READ_CONNECTION, connection)
        return connection

    @property
    def read_session(self) -> Session:
        """Models for pages, read on this app context's read connection."""
        session: Session | None = g.get(_READ_SESSION)
        if session is None:
            session = Session(bind=self.read_connection(), expire_on_commit=False)
            setattr(g, _READ_SESSION, session)
        return session

    @property
    def session(self) -> Session:
        if self.db is not None:
            return self.db.session()  # the scoped session of the current app context
        assert self._own_session is not None
        return self._own_session()

    def get_engine(self) -> Engine:
        if self.db is not None:
            return self.db.engine
        assert self.engine is not None
        return self.engine

    def stop(self, app: Flask) -> None:
        """Finish this app's background work: what is buffered is written, then the
        background threads end. For an app that is going away while the process lives on
        (a test's app, a benchmark's), before its engine is disposed or its database
        dropped; a process that exits does the same at exit."""
        for hook in self.on_stop:
            hook(app)
        self.stop_background.set()

    def remove_session(self, exc: BaseException | None = None) -> None:
        if self._own_session is not None and self._own_session.registry.has():
            self._own_session.remove()
        read_session: Session | None = g.pop(_READ_SESSION, None)
        if read_session is not None:
            read_session.close()
        connection: Connection | None = g.pop(_READ_CONNECTION, None)
        if connection is not None:
            connection.close()


# The g attributes holding an app context's read connection and read session.
_READ_CONNECTION = "_koudai_read_connection"
_READ_SESSION = "_koudai_read_session"


def _app_context_id() -> int:
    return id(_cv_app.get(None))


def _create_own_engine(app: Flask) -> Engine:
    uri = app.config["KOUDAI_DATABASE_URI"] or app.config.get("SQLALCHEMY_DATABASE_URI")
    if not uri:
        os.makedirs(app.instance_path, exist_ok=True)
        uri = "sqlite:///" + os.path.join(app.instance_path, "koudai.db")
    kwargs: dict[str, Any] = {}
    if uri.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        # The connection returned last is handed out first: a quiet site keeps reusing one
        # warm connection (and its server process) instead of cycling through the pool, and
        # the others rest, so only they are pinged (``_ping_idle_connections``). One order
        # on one thread costs about a quarter less CPU, client and server (bench/checkout.py).
        kwargs["pool_use_lifo"] = True
    options = app.config["KOUDAI_ENGINE_OPTIONS"]
    kwargs.update(options)
    engine = create_engine(uri, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif "pool_pre_ping" not in options:
        _ping_idle_connections(engine)
    return engine


IDLE_PING_AFTER = 1.0  # seconds a pooled connection may rest before it is pinged on checkout
_RESTING_SINCE = "koudai_resting_since"


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use only when it rested more than IDLE_PING_AFTER.

    What kills a pooled connection in practice is idleness (a server, proxy, NAT or firewall
    timeout) or a database restart. A connection back in use within a second is alive as far
    as idle timeouts go, so a busy shop skips the ping's round trip on every request (the
    rule HikariCP applies with its alive-bypass window). A ping that fails invalidates the
    whole pool, as ``pool_pre_ping`` does, and the checkout gets a fresh connection. Hosts
    wanting a ping on every checkout set ``pool_pre_ping`` in ``KOUDAI_ENGINE_OPTIONS``.
    """
    dialect = engine.dialect

    def rested(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info[_RESTING_SINCE] = time.monotonic()

    def check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_RESTING_SINCE)  # None: a new connection, alive by definition
        if since is None or time.monotonic() - since <= IDLE_PING_AFTER:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            raise sqlalchemy_exc.InvalidatePoolError(f"ping after rest failed: {exc}") from exc

    event.listen(engine.pool, "checkin", rested)
    event.listen(engine.pool, "checkout", check)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Koudai:
    """Embed the koudai back office in a Flask app.

    ``Koudai(app, db=db)`` or ``koudai = Koudai(); koudai.init_app(app, db=db)``, where ``db``
    is the host's Flask-SQLAlchemy object (our tables go through its session and engine).
    """

    def __init__(self, app: Flask | None = None, *, db: Any | None = None) -> None:
        self._db = db
        if app is not None:
            self.init_app(app, db=db)

    def init_app(self, app: Flask, db: Any | None = None) -> None:
        if "koudai" in app.extensions:
            raise KoudaiError("koudai is already initialised on this app; call init_app once")
        db = db if db is not None else self._db
        if db is not None and "sqlalchemy" not in app.extensions:
            raise ConfigError(
                "the db passed to Koudai is not initialised on this app; "
                "call db.init_app(app) before Koudai(app, db=db)"
            )
        koudai_config.validate(app.config)
        from koudai_flask import payments

        payments.validate_settings(app)
        state = KoudaiState(app, db)
        app.extensions["koudai"] = state
        app.teardown_appcontext(state.remove_session)
        from koudai_flask.jobs.handlers import handler_paths, resolve

        for topic, paths in handler_paths(app.config).items():
            state.handlers[topic].extend(resolve(path) for path in paths)

        from koudai_flask.blueprints import assets_blueprint
        from koudai_flask.blueprints.common import install_template_globals

        app.register_blueprint(assets_blueprint(), url_prefix=app.config["KOUDAI_STATIC_URL_PATH"])
        install_template_globals(app)
        from koudai_flask import i18n

        i18n.init_app(app)
        if app.config["KOUDAI_REGISTER_BLUEPRINTS"]:
            register_blueprints(app)

        if (
            app.config["KOUDAI_JOBS"] == "inline"
            and app.config["KOUDAI_INLINE_SCHEDULE"] == "thread"
        ):
            _start_schedule_thread_on_first_request(app)
        elif app.config["KOUDAI_JOBS"] == "inline":
            from koudai_flask.jobs.schedules import InlineSchedule

            state.inline_schedule = InlineSchedule(app)
            next_look = [0.0]  # monotonic time of the next look at the schedule

            @app.teardown_request
            def _run_due_jobs(exc: BaseException | None) -> None:
                # Periodic intervals are whole seconds: looking once a second at most runs
                # every job on time to within a second and costs a busy shop one clock read.
                if exc is not None or state.inline_schedule is None:
                    return
                now = time.monotonic()
                if now < next_look[0]:
                    return
                next_look[0] = now + 1.0
                state.inline_schedule.run_due(app)

        from koudai_flask.cli import koudai_cli

        app.cli.add_command(koudai_cli)

    @staticmethod
    def subscribe(app: Flask, topic: str, handler: OutboxHandler) -> None:
        """Call ``handler(topic, payload)`` from a job for every committed ``topic`` event."""
        get_state(app).handlers[topic].append(handler)


def _start_schedule_thread_on_first_request(app: Flask) -> None:
    """``KOUDAI_INLINE_SCHEDULE = "thread"``: the periodic jobs run from a thread of each
    serving process, started by its first request (so CLI commands never start one)."""
    started = threading.Event()
    guard = threading.Lock()

    @app.before_request
    def _start_schedule_thread() -> None:
        if started.is_set():
            return
        with guard:
            if not started.is_set():
                from koudai_flask.jobs.schedules import start_inline_thread

                start_inline_thread(app, get_state(app).stop_background)
                started.set()


def register_blueprints(app: Flask) -> None:
    """Register the four blueprints at the configured prefixes."""
    from koudai_flask.blueprints import (
        create_admin_blueprint,
        create_api_blueprint,
        create_hooks_blueprint,
        create_shop_blueprint,
    )

    factories: list[tuple[Callable[[], Blueprint], str]] = [
        (create_shop_blueprint, "KOUDAI_SHOP_URL_PREFIX"),
        (create_admin_blueprint, "KOUDAI_ADMIN_URL_PREFIX"),
        (create_api_blueprint, "KOUDAI_API_URL_PREFIX"),
        (create_hooks_blueprint, "KOUDAI_HOOKS_URL_PREFIX"),
    ]
    for factory, prefix_key in factories:
        app.register_blueprint(factory(), url_prefix=app.config[prefix_key])
    exempt_from_host_csrf(app)


def exempt_from_host_csrf(app: Flask) -> None:
    """Signed callbacks and API calls carry no form token: a host's CSRFProtect skips them.

    Our own forms carry their token whether or not the host protects the whole site.
    """
    csrf = app.extensions.get("csrf")
    if csrf is None:
        return
    for name in ("koudai_hooks", "koudai_api"):
        if name in app.blueprints:
            csrf.exempt(app.blueprints[name])


def get_state(app: Flask | None = None) -> KoudaiState:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return app.extensions["koudai"]
    except KeyError:
        raise KoudaiError(
            "koudai is not initialised on this app; call Koudai(app, db=db) "
            "or koudai.init_app(app, db=db) first"
        ) from None
