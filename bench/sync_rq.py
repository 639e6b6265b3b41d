"""The RQ side of the sync benchmark: worker processes, the run's jobs and its Redis keys."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis import Redis
from rq.job import Job

ROOT = Path(__file__).resolve().parent.parent
WORKER_APP = "bench.sync_apps:worker_app()"  # imported by the workers from ROOT


@contextmanager
def workers_running(
    count: int, env: dict[str, str], logs: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` ``flask koudai worker`` processes; stopped (warm, then killed) at the end."""
    command = [sys.executable, "-m", "flask", "--app", WORKER_APP]
    command += ["koudai", "worker"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(count):
            with (logs / f"worker-{n}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # Ctrl-C reaches us; we stop them ourselves
                    )
                )
        yield processes
    finally:
        for process in processes:
            process.terminate()  # RQ's warm shutdown: the running job ends first
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker_failure(logs: Path) -> str:
    tails = [f"{p.name}: " + p.read_text(errors="replace")[-1500:] for p in sorted(logs.iterdir())]
    return "\n".join(tails)


def run_job_ids(connection: Redis, queue_names: list[str]) -> set[str]:
    """Every job id our queues and their registries still know."""
    from rq import Queue
    from rq.registry import (
        CanceledJobRegistry,
        DeferredJobRegistry,
        FailedJobRegistry,
        FinishedJobRegistry,
        ScheduledJobRegistry,
        StartedJobRegistry,
    )

    ids: set[str] = set()
    for name in queue_names:
        queue = Queue(name, connection=connection)
        ids.update(queue.get_job_ids())
        for registry in (
            StartedJobRegistry,
            FinishedJobRegistry,
            FailedJobRegistry,
            DeferredJobRegistry,
            ScheduledJobRegistry,
            CanceledJobRegistry,
        ):
            ids.update(registry(queue=queue).get_job_ids())
    return ids


def delete_run_keys(connection: Redis, tag: str, ids: set[str]) -> int:
    """Delete every key naming the run (``tag``) or one of its jobs or workers, and take
    them out of RQ's shared sets; returns the keys deleted."""

    def ours(text: str) -> bool:
        return tag in text or any(part in ids for part in text.split(":"))

    deleted = 0
    for key in list(connection.scan_iter(count=1000)):
        name = _text(key)
        if ours(name):
            deleted += int(connection.delete(key))
            continue
        if not name.startswith("rq:"):
            continue
        members: list[Any] = []
        kind = _text(connection.type(key))
        if kind == "set":
            members = [m for m in connection.smembers(key) if ours(_text(m))]
            if members:
                connection.srem(key, *members)
        elif kind == "zset":
            members = [m for m in connection.zrange(key, 0, -1) if ours(_text(m))]
            if members:
                connection.zrem(key, *members)
    return deleted


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def job_stages(
    connection: Redis, ids: set[str], since: datetime, label: Callable[[Job], str | None]
) -> dict[str, tuple[list[float], list[float]]]:
    """Per kind of job (``label``; None leaves a job out) enqueued after ``since``: the
    seconds from enqueued to started (the wait, with the fork of the work horse) and from
    started to ended (the run), by RQ's own timestamps."""
    stages: dict[str, tuple[list[float], list[float]]] = {}
    for job in Job.fetch_many(sorted(ids), connection=connection):
        if job is None or not (job.enqueued_at and job.started_at and job.ended_at):
            continue
        enqueued, started, ended = (
            moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            for moment in (job.enqueued_at, job.started_at, job.ended_at)
        )
        name = label(job)
        if name is None or enqueued < since:
            continue
        waits, runs = stages.setdefault(name, ([], []))
        waits.append((started - enqueued).total_seconds())
        runs.append((ended - started).total_seconds())
    return stages


def failed_jobs(connection: Redis, queue_names: list[str]) -> list[tuple[str, str]]:
    """``(function, last line of the error)`` of every job RQ gave up on in our queues."""
    from rq import Queue
    from rq.registry import FailedJobRegistry

    failed = []
    for name in queue_names:
        registry = FailedJobRegistry(queue=Queue(name, connection=connection))
        for job in Job.fetch_many(registry.get_job_ids(), connection=connection):
            if job is None:
                continue
            result = job.latest_result()
            lines = (result.exc_string or "").splitlines() if result is not None else []
            failed.append((job.func_name or "?", _exception_line(lines)))
    return failed


_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def _exception_line(lines: list[str]) -> str:
    """The last ``SomeError: message`` line of a traceback (not SQLAlchemy's link line)."""
    for line in reversed(lines):
        if _EXCEPTION.match(line):
            return line
    return lines[-1] if lines else "?"


def wait_idle(connection: Redis, queue_names: list[str], timeout: float = 10.0) -> bool:
    """Wait until our queues are empty and no job of theirs runs; False after ``timeout``."""
    from rq import Queue
    from rq.registry import StartedJobRegistry

    queues = [Queue(name, connection=connection) for name in queue_names]
    deadline = time.monotonic() + timeout
    while any(q.count or StartedJobRegistry(queue=q).count for q in queues):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
