"""Funnel events benchmark: the product page with event recording on and off, same load.

Two gunicorn servers (the same workers and worker class) serve koudai's shop as
``bench/storefront.py`` sets it up (its seeding, its minimal host site and database
settings), one with ``KOUDAI_FUNNEL_EVENTS = True`` and one with ``False``. Both are
checked first (status 200, the product's SKUs on the page) and warmed up; then the load
generator (wrk when installed, else Python threads) runs the product page on one, then the
other, for ``--rounds`` rounds, and the script prints both rates and their ratio (on / off).
The target is that recording costs at most 10 %: a ratio of 0.90 or more.

When the servers have stopped (gracefully, as a deploy would stop them), the events in the
database are counted: every product view the servers answered must be there, which shows
that the per-process buffers were written at exit. Last, an in-process pass (Flask's test
client, no network) times one request of each kind, which the load on a shared machine
disturbs less.

Everything happens in a throwaway PostgreSQL schema, dropped at the end, also on Ctrl-C.

    python bench/events.py [--seconds 3] [--rounds 5] [--connections 4] [--workers 2]
                           [--worker-class sync|gthread] [--client auto|wrk|python]
                           [--fresh-visitors]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from importlib.metadata import version
from pathlib import Path

# The sibling modules, whether this file runs as a script or gunicorn imports it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sqlalchemy  # noqa: E402
import storefront_apps as apps  # noqa: E402
from flask import Flask  # noqa: E402
from sqlalchemy import create_engine, func, make_url, select  # noqa: E402
from storefront_load import Run, Server, wait_until_listening  # noqa: E402

from koudai_flask import Koudai  # noqa: E402

TARGET = 0.90  # events on / events off
IN_PROCESS_BATCHES = 10
IN_PROCESS_BATCH = 50


def events_app(recording: bool) -> Flask:
    """``storefront_apps.koudai_app()`` with funnel event recording on or off."""
    app = Flask("koudai_events_bench")
    app.config.update(
        SECRET_KEY=os.environ[apps.ENV_SECRET],
        KOUDAI_DATABASE_URI=apps.schema_url().render_as_string(hide_password=False),
        KOUDAI_ENGINE_OPTIONS={"pool_size": 2, "max_overflow": 0},
        KOUDAI_PAGE_SIZE=apps.PAGE_SIZE,
        KOUDAI_FUNNEL_EVENTS=recording,
    )
    Koudai(app)
    return app


def say(line: str = "") -> None:
    print(line, flush=True)


def gunicorn_command(port: int, recording: bool, options: list[str]) -> list[str]:
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "gunicorn", "--chdir", str(root)]
    command += ["--bind", f"127.0.0.1:{port}", *options, "--graceful-timeout", "5"]
    return command + ["--log-level", "warning", f"bench.events:events_app({recording})"]


def start(server: Server, recording: bool, options: list[str], env: dict[str, str]) -> None:
    """Start one server and wait until it listens."""
    with server.log.open("wb") as log:
        server.process = subprocess.Popen(
            gunicorn_command(server.port, recording, options),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the servers ourselves
        )
    wait_until_listening(server)


def stop(server: Server) -> None:
    """SIGTERM: gunicorn stops its workers gracefully (their atexit handlers run)."""
    process = server.process
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(server: Server) -> float:
    """CPU time (user + system) used so far by a gunicorn master and its workers.

    What a request costs in CPU is far less disturbed than requests per second by the
    other load of a shared machine.
    """
    assert server.process is not None
    master = server.process.pid
    pids = [master]
    children = Path(f"/proc/{master}/task/{master}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def in_process(apps_by_side: dict[str, Flask], path: str, cookie: str | None) -> dict[str, float]:
    """Milliseconds per request of each app through Flask's test client: the fastest batch
    of each (as timeit does), the two sides' batches taking turns so drift hits both."""
    clients = {}
    for side, app in apps_by_side.items():
        client = app.test_client()
        if cookie:
            name, _, value = cookie.partition("=")
            client.set_cookie(name, value)
        clients[side] = client
    best = dict.fromkeys(apps_by_side, float("inf"))
    for batch in range(IN_PROCESS_BATCHES + 1):
        for side, client in clients.items():
            began = time.perf_counter()
            for _ in range(IN_PROCESS_BATCH):
                response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"in-process {path}: status {response.status_code}")
            if batch:  # the first batch of each only warms up
                elapsed = (time.perf_counter() - began) / IN_PROCESS_BATCH * 1000
                best[side] = min(best[side], elapsed)
    return best


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from pg import default_database_url

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per run")
    parser.add_argument("--rounds", type=int, default=5, help="off/on alternations")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds per server")
    parser.add_argument("--connections", type=int, default=4, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--fresh-visitors",
        action="store_true",
        help="send no session cookie (every request a first visit: a visit event and a cookie)",
    )
    parser.add_argument("--database-url", default=default_database_url(), help="PostgreSQL URL")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup <= 0 or min(args.rounds, args.connections) < 1:
        parser.error("--seconds and --warmup must be > 0, --rounds and --connections >= 1")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import psycopg
    import storefront as shop
    from pg import bench_schema, server_version
    from storefront_load import Client, fetch, free_port, pick_client

    from koudai_flask.extension import get_state
    from koudai_flask.models import FunnelEvent
    from koudai_flask.schema import create_all

    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    base = make_url(args.database_url)
    if base.get_backend_name() != "postgresql":
        print("this benchmark needs PostgreSQL", file=sys.stderr)
        return 2
    schema = f"koudai_events_{os.getpid()}"
    os.environ.update(
        {
            apps.ENV_URL: base.render_as_string(hide_password=False),
            apps.ENV_SCHEMA: schema,
            apps.ENV_SECRET: secrets.token_hex(16),
        }
    )
    kind = pick_client(args.client)
    admin = create_engine(base, poolclass=sqlalchemy.NullPool)
    say("koudai funnel events benchmark: the product page with event recording on and off")
    say(
        f"  Python {platform.python_version()}, Flask {version('flask')}, SQLAlchemy "
        f"{sqlalchemy.__version__}, psycopg {psycopg.__version__}, PostgreSQL "
        f"{server_version(admin)}, gunicorn {version('gunicorn')}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    options = ["--workers", str(args.workers), "--worker-class", args.worker_class]
    if args.worker_class == "gthread":
        options += ["--threads", str(args.threads)]
    try:
        with ExitStack() as stack, tempfile.TemporaryDirectory() as workdir:
            stack.enter_context(bench_schema(admin, schema))
            setup = create_engine(apps.schema_url(), poolclass=sqlalchemy.NullPool)
            create_all(setup)
            seeder = events_app(False)
            stack.callback(get_state(seeder).get_engine().dispose)
            stack.callback(get_state(seeder).stop, seeder)
            seeded = shop.seed(seeder)
            servers = {
                side: Server(side, "", free_port(), Path(workdir) / f"{side}.log")
                for side in ("off", "on")
            }
            env = dict(os.environ)
            for side, server in servers.items():
                stack.callback(stop, server)
                start(server, side == "on", options, env)
            url = {side: server.url(shop.PRODUCT_PATH) for side, server in servers.items()}
            cookie: str | None = None
            for side in ("on", "off"):  # a first visit, then the page again with its cookie
                for _ in range(2):
                    status, body, set_cookie = fetch(url[side], cookie)
                    if status != 200:
                        raise RuntimeError(f"events {side}: product page status {status}")
                    shop.check_product(f"events {side}", body, seeded)
                    cookie = set_cookie or cookie
            if args.fresh_visitors:
                cookie = None
            client = Client(kind, args.connections, cookie or "", Path(workdir))
            say(
                f"  {len(seeded.slugs)} products seeded; gunicorn {args.workers} "
                f"{args.worker_class} workers per server; load: {client.describe()}; "
                f"{args.rounds} rounds of {args.seconds:g} s per side after {args.warmup:g} s "
                "warm-up; " + ("no cookies (first visits)" if cookie is None else "cookie sent")
            )
            for side in ("off", "on"):
                warm = client.run(url[side], args.warmup)
                if warm.requests == 0 or warm.failures:
                    raise RuntimeError(f"warm-up of events {side}: {warm.failures} failures")
            runs: dict[str, list[Run]] = {"off": [], "on": []}
            cpu = {"off": 0.0, "on": 0.0}
            for round_number in range(1, args.rounds + 1):
                # off, on, then on, off: a machine that gets busier hits both sides alike
                for side in ("off", "on") if round_number % 2 else ("on", "off"):
                    cpu_before = cpu_seconds(servers[side])
                    run = client.run(url[side], args.seconds)
                    cpu[side] += cpu_seconds(servers[side]) - cpu_before
                    if run.failures:
                        raise RuntimeError(f"events {side}: {run.failures} failed responses")
                    runs[side].append(run)
                    say(
                        f"  round {round_number}  events {side:<3} {run.rate:>8.1f} req/s   "
                        f"p50 {run.p50_ms:6.1f} ms   p95 {run.p95_ms:6.1f} ms"
                    )
            rate = {
                side: sum(r.requests for r in rs) / sum(r.seconds for r in rs)
                for side, rs in runs.items()
            }
            p50 = {side: statistics.median(r.p50_ms for r in rs) for side, rs in runs.items()}
            for server in servers.values():
                stop(server)
            with setup.connect() as connection:
                recorded = dict(
                    connection.execute(
                        select(FunnelEvent.event, func.count()).group_by(FunnelEvent.event)
                    ).all()
                )
            setup.dispose()
            say()
            say(f"product page, events off: {rate['off']:.1f} req/s (p50 {p50['off']:.1f} ms)")
            say(f"product page, events on:  {rate['on']:.1f} req/s (p50 {p50['on']:.1f} ms)")
            ratio = rate["on"] / rate["off"] if rate["off"] else float("nan")
            say(
                f"ratio on / off {ratio:.3f}: recording costs {(1 - ratio) * 100:.1f} % "
                f"(target at most {(1 - TARGET) * 100:.0f} %: "
                + ("met" if ratio >= TARGET else "NOT met")
                + ")"
            )
            paired = statistics.median(
                on.rate / off.rate for on, off in zip(runs["on"], runs["off"], strict=True)
            )
            say(f"median of the rounds' own ratios on / off: {paired:.3f}")
            per_request = {
                side: cpu[side] / sum(r.requests for r in runs[side]) * 1000 for side in cpu
            }
            say(
                f"server CPU per request: off {per_request['off']:.2f} ms, on "
                f"{per_request['on']:.2f} ms; ratio on / off in requests per CPU second "
                f"{per_request['off'] / per_request['on']:.3f} (recording costs "
                f"{(per_request['on'] / per_request['off'] - 1) * 100:.1f} % of CPU)"
            )
            timed = sum(r.requests for r in runs["on"])
            views = recorded.get("product_viewed", 0)
            say(
                f"written by the events-on server by the time it stopped: {views} product_viewed "
                f"and {recorded.get('visit', 0)} visit events, for {timed} timed requests "
                f"(plus warm-up and checks): " + ("none lost" if views >= timed else "LOST some")
            )
            on_app, off_app = events_app(True), events_app(False)
            stack.callback(get_state(on_app).get_engine().dispose)
            stack.callback(get_state(off_app).get_engine().dispose)
            stack.callback(get_state(on_app).stop, on_app)  # its buffered events written
            stack.callback(get_state(off_app).stop, off_app)
            ms = in_process({"off": off_app, "on": on_app}, shop.PRODUCT_PATH, cookie)
            say(
                f"in-process, fastest of {IN_PROCESS_BATCHES} batches of {IN_PROCESS_BATCH}: "
                f"off {ms['off']:.2f} ms, on {ms['on']:.2f} ms per request; ratio on / off "
                f"{ms['off'] / ms['on']:.3f} in requests per second"
            )
            from koudai_flask.services import funnel

            with on_app.app_context():
                funnel.flush()
        return 0 if rate["on"] >= TARGET * rate["off"] else 1
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped, bench schema dropped", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"events benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
