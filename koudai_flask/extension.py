"""The ``Koudai`` Flask extension: configuration, database wiring, blueprints and CLI.

The extension object keeps no app (``self.app`` is never set); everything per app lives in
``app.extensions["koudai"]`` as a :class:`KoudaiState`, so one ``Koudai()`` can serve
several apps with different configurations in one process.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app
from sqlalchemy import Engine, create_engine, event
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
        # Where uploaded images go; a host may set its own Storage after init_app.
        self.storage: Storage = LocalStorage()
        if db is None:
            self.engine = _create_own_engine(app)
            factory = sessionmaker(bind=self.engine, expire_on_commit=False)
            self._own_session = scoped_session(factory, scopefunc=_app_context_id)
        self._read_session: scoped_session[Session] | None = None

    @property
    def read_session(self) -> Session:
        """Reads for pages: autocommit, so no BEGIN and no ROLLBACK round trip."""
        if self._read_session is None:
            engine = self.get_engine().execution_options(isolation_level="AUTOCOMMIT")
            factory = sessionmaker(bind=engine, expire_on_commit=False)
            self._read_session = scoped_session(factory, scopefunc=_app_context_id)
        return self._read_session()

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

    def remove_session(self, exc: BaseException | None = None) -> None:
        if self._own_session is not None:
            self._own_session.remove()
        if self._read_session is not None:
            self._read_session.remove()


def _app_context_id() -> int:
    from flask.globals import _cv_app

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
        kwargs["pool_pre_ping"] = True
    kwargs.update(app.config["KOUDAI_ENGINE_OPTIONS"])
    engine = create_engine(uri, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


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
        from koudai_flask.jobs.handlers import BUILTIN_HANDLERS, resolve

        for topic, paths in BUILTIN_HANDLERS.items():
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

            @app.teardown_request
            def _run_due_jobs(exc: BaseException | None) -> None:
                if exc is None and state.inline_schedule is not None:
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
