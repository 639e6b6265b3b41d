"""A throwaway Tryton server on loopback for the ERP adapter tests (PROTOCOLS §6.7).

The session fixture ``tryton_server`` runs one SQLite database with ``stock`` and ``sale``
activated, the admin user given every group and a company (``res.user.write`` on groups is
refused over RPC, so a small script does it in-process as user 0), under ``trytond`` as a
subprocess on a free 127.0.0.1 port. The database is built once per test run (~40 s), by the
first process that needs it; every process (each pytest-xdist worker) serves a copy of it, so
tests that stop or restart the server pay only the server start, not the build.

The fixtures ``tryton_server`` and ``running_tryton`` are defined once, in
``tests/conftest.py``: a fixture imported into two test modules would be two fixtures, each
building its own server. Without trytond installed the tests skip (or fail under
``KOUDAI_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import unavailable

DATABASE = "test"
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "koudai-admin-pw"
START_TIMEOUT = 60.0

# Runs inside the venv's Python, as trytond's user 0 (root), once after the modules are
# activated: the currency, the company and the admin user's groups cannot be set over RPC.
SETUP_SCRIPT = r"""
import sys
from decimal import Decimal

from trytond.config import config
config.update_etc(sys.argv[1])

from trytond.pool import Pool
from trytond.transaction import Transaction

database = sys.argv[2]
Pool.start()
pool = Pool(database)
pool.init()

with Transaction().start(database, 0, context={}) as transaction:
    Currency = pool.get("currency.currency")
    Party = pool.get("party.party")
    Company = pool.get("company.company")
    Group = pool.get("res.group")
    User = pool.get("res.user")

    cny, = Currency.create([{
        "name": "Chinese Yuan Renminbi", "code": "CNY", "symbol": "¥",
        "digits": 2, "rounding": Decimal("0.01"),
    }])
    party, = Party.create([{"name": "Koudai Test Shop"}])
    company, = Company.create([{
        "party": party.id, "currency": cny.id, "timezone": "Asia/Shanghai",
    }])
    admin, = User.search([("login", "=", "admin")])
    User.write([admin], {
        "groups": [("add", [g.id for g in Group.search([])])],
        "companies": [("add", [company.id])],
        "company": company.id,
    })
    transaction.commit()
print("setup done")
"""


def _script(name: str) -> str:
    """A trytond console script: next to this interpreter (the venv), else on ``PATH``."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"trytond is importable but its {name!r} script is missing", pytrace=False)
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], env: dict[str, str], log: Path) -> None:
    """Run a set-up step, its output appended to ``log``; a failure shows the log's tail."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(args)}\n".encode())
        out.flush()
        result = subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        pytest.fail(f"Tryton set-up step failed ({args[0]}):\n{tail}", pytrace=False)


@dataclass
class TrytonServer:
    """A running ``trytond`` on loopback, with the admin credentials and start/stop controls."""

    root: Path
    config_path: Path
    port: int
    env: dict[str, str]
    database: str = DATABASE
    username: str = ADMIN_LOGIN
    password: str = ADMIN_PASSWORD
    build_seconds: float = 0.0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "trytond.log"

    def start(self) -> None:
        """Start ``trytond`` (``-d`` is required in 8.x) and wait until it answers RPC."""
        if self.process is not None and self.process.poll() is None:
            return
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    _script("trytond"),
                    "-c",
                    str(self.config_path),
                    "-d",
                    self.database,
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        body = {"id": 0, "method": "common.server.version", "params": []}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.post(f"{self.url}/rpc/", json=body, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        self.stop()
        pytest.fail(f"trytond did not answer on {self.url}:\n{tail}", pytrace=False)

    def stop(self) -> None:
        """Terminate the server process (kill it if it does not exit within 10 s)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def build_server(root: Path, template: Path | None = None) -> TrytonServer:
    """Create the config and the database under ``root`` (not started yet).

    The database is a copy of ``template`` (an initialised one) when given; otherwise it is
    initialised here (~40 s) and kept as ``root / "template.sqlite"``.
    """
    started = time.monotonic()
    db_dir = root / "db"
    db_dir.mkdir(parents=True)
    port = _free_port()
    config_path = root / "trytond.conf"
    config_path.write_text(
        "[database]\n"
        "uri = sqlite://\n"
        f"path = {db_dir}\n"
        "[web]\n"
        f"listen = 127.0.0.1:{port}\n"
        "[session]\n"
        # Keep failed-login back-off short: a test sends one wrong password on purpose.
        "max_attempt = 100\n"
    )
    pass_file = root / "admin-password.txt"
    pass_file.write_text(ADMIN_PASSWORD + "\n")
    env = {
        **os.environ,
        "TRYTONPASSFILE": str(pass_file),
        "TRYTOND_CONFIG": str(config_path),
        # The server's own deprecation notices would only clutter its log.
        "PYTHONWARNINGS": "ignore",
    }
    database = db_dir / f"{DATABASE}.sqlite"
    if template is not None:
        shutil.copyfile(template, database)
    else:
        database.touch()
        admin = _script("trytond-admin")
        log = root / "setup.log"
        common = [admin, "-c", str(config_path), "-d", DATABASE]
        _run([*common, "--all", "--email", "admin@example.com"], env, log)
        _run([*common, "-u", "stock", "sale", "--activate-dependencies"], env, log)
        _run([sys.executable, "-c", SETUP_SCRIPT, str(config_path), DATABASE], env, log)
        shutil.copyfile(database, root / "template.sqlite")
    return TrytonServer(
        root=root,
        config_path=config_path,
        port=port,
        env=env,
        build_seconds=time.monotonic() - started,
    )


def run_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The initialised database of this test run, built by the first process that needs it.

    Under pytest-xdist each worker has its own base folder inside the run's one; the builder
    holds a lock there, so a worker needing the template meanwhile waits for it instead of
    building a second one. Each process still runs a server of its own on a copy.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    template = base / "tryton-template.sqlite"
    with (base / "tryton-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            built = build_server(tmp_path_factory.mktemp("tryton-build"))
            partial = base / "tryton-template.sqlite.partial"
            shutil.copyfile(built.root / "template.sqlite", partial)
            partial.rename(template)
    return template


def serve_tryton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    """The body of the session fixture: build the server once, start it, stop it at the end."""
    if importlib.util.find_spec("trytond") is None:
        unavailable("trytond is not installed: pip install -e '.[test]'")
    server = build_server(tmp_path_factory.mktemp("tryton"), run_template(tmp_path_factory))
    try:
        server.start()
        yield server
    finally:
        server.stop()
