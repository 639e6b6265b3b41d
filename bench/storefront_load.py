"""The storefront benchmark's load side: gunicorn servers and the load generator.

``serving()`` runs one app of ``bench/storefront_apps.py`` under gunicorn on 127.0.0.1 and
stops it (master and workers) when the block ends. ``Client`` times one URL for a number of
seconds with wrk when it is installed, else with Python threads and ``http.client``.
"""

from __future__ import annotations

import http.client
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent

WRK_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("WRK_RESULT %d %d %d %d %d %d %d %.1f %.1f\\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(95)))
end
"""


# -- load generation -------------------------------------------------------------------------


@dataclass
class Run:
    """One timed run of the load generator against one URL."""

    requests: int
    seconds: float
    failures: int  # non-2xx responses and socket errors
    p50_ms: float
    p95_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class Client:
    """Runs the load: wrk when it is installed (``--client auto``), else Python threads."""

    def __init__(self, kind: str, connections: int, cookie: str, workdir: Path) -> None:
        self.kind = kind
        self.connections = connections
        self.cookie = cookie
        self.script = workdir / "report.lua"
        self.script.write_text(WRK_SCRIPT)

    def describe(self) -> str:
        if self.kind == "wrk":
            out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
            name = (out.stdout or out.stderr).split("[")[0].strip() or "wrk"
            return f"{name}, 1 thread, {self.connections} connections"
        return f"Python http.client, {self.connections} threads"

    def run(self, url: str, seconds: float) -> Run:
        if self.kind == "wrk":
            return self._wrk(url, seconds)
        return self._threads(url, seconds)

    def _wrk(self, url: str, seconds: float) -> Run:
        whole = max(1, math.ceil(seconds))  # wrk takes whole seconds; it reports what it ran
        command = ["wrk", "-t1", f"-c{self.connections}", f"-d{whole}s", "--timeout", "10s"]
        command += ["-s", str(self.script), url]
        if self.cookie:
            command[-1:-1] = ["-H", f"Cookie: {self.cookie}"]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        match = re.search(r"^WRK_RESULT (.*)$", out.stdout, re.M)
        if match is None:
            raise RuntimeError(f"wrk printed no result:\n{out.stdout}{out.stderr}")
        done, micros, status, *sockets = match.group(1).split()[:7]
        p50, p95 = (float(v) / 1000 for v in match.group(1).split()[7:9])
        failures = int(status) + sum(int(n) for n in sockets)
        return Run(int(done), int(micros) / 1e6, failures, p50, p95)

    def _threads(self, url: str, seconds: float) -> Run:
        parts = urlsplit(url)
        host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        latencies: list[list[float]] = [[] for _ in range(self.connections)]
        failures = [0] * self.connections
        start = threading.Barrier(self.connections + 1)
        stop = threading.Event()

        def load(index: int) -> None:
            connection = http.client.HTTPConnection(host, port, timeout=10)
            headers = {"Cookie": self.cookie} if self.cookie else {}
            start.wait()
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    ok = 200 <= response.status < 300
                except (OSError, http.client.HTTPException):
                    connection.close()
                    ok = False
                if stop.is_set():
                    break
                if ok:
                    latencies[index].append(time.perf_counter() - began)
                else:
                    failures[index] += 1
            connection.close()

        threads = [threading.Thread(target=load, args=(i,)) for i in range(self.connections)]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.perf_counter()
        time.sleep(seconds)
        stop.set()
        elapsed = time.perf_counter() - began
        for thread in threads:
            thread.join()
        samples = sorted(s for per_thread in latencies for s in per_thread)
        return Run(
            len(samples),
            elapsed,
            sum(failures),
            percentile(samples, 0.50) * 1000,
            percentile(samples, 0.95) * 1000,
        )


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    return samples[min(len(samples) - 1, int(fraction * len(samples)))]


def pick_client(asked: str) -> str:
    if asked == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if asked == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--client wrk: wrk is not installed (apt-get install wrk)")
    return asked


# -- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    name: str
    factory: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def gunicorn_command(server: Server, options: list[str]) -> list[str]:
    command = [sys.executable, "-m", "gunicorn", "--chdir", str(ROOT)]
    command += ["--bind", f"127.0.0.1:{server.port}", *options, "--graceful-timeout", "5"]
    return command + ["--log-level", "warning", f"bench.storefront_apps:{server.factory}()"]


@contextmanager
def serving(server: Server, options: list[str], env: dict[str, str]) -> Iterator[Server]:
    """Start gunicorn, wait until it listens, and stop it (master and workers) at the end."""
    with server.log.open("wb") as log:
        server.process = subprocess.Popen(
            gunicorn_command(server, options),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the server ourselves
        )
    try:
        wait_until_listening(server)
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


# -- CPU accounting --------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stats() -> Iterator[tuple[int, int, str, float]]:
    """(pid, parent pid, command name, CPU seconds) of every process /proc shows."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # After the name: state, ppid, ...; utime and stime are fields 14 and 15 of stat(5).
        yield int(entry.name), int(fields[1]), name, (int(fields[11]) + int(fields[12])) / _TICKS


def cpu_seconds(server: Server) -> tuple[float, float]:
    """CPU seconds used so far by the server (gunicorn master and workers) and by every
    PostgreSQL process on this machine (Linux /proc; zeros elsewhere)."""
    if server.process is None or not Path("/proc/self/stat").exists():
        return 0.0, 0.0
    app = database = 0.0
    for pid, ppid, name, seconds in _proc_stats():
        if pid == server.process.pid or ppid == server.process.pid:
            app += seconds
        elif name.startswith("postgres"):
            database += seconds
    return app, database


def wait_until_listening(server: Server, timeout: float = 30.0) -> None:
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the {server.name} server exited at start:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the {server.name} server did not listen within {timeout:g} s")


def fetch(url: str, cookie: str | None = None) -> tuple[int, str, str | None]:
    """GET ``url``: status, body and the session cookie the response sets, if any."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request("GET", parts.path, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
        set_cookie = response.getheader("Set-Cookie")
        return response.status, body, set_cookie.split(";")[0] if set_cookie else None
    finally:
        connection.close()
