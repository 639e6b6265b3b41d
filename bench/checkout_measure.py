"""How the checkout benchmark measures a side: threads behind one barrier placing orders for
a fixed window, what each thread counted, and the CPU one order costs on one thread (this
process's, and every PostgreSQL process's on the machine, read from /proc)."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

Item = TypeVar("Item")


@dataclass
class ThreadResult:
    """What one thread did: orders finished inside the timed window, and all of them."""

    ok: int = 0
    errors: int = 0
    all_ok: int = 0  # warm-up included: what the database must show afterwards
    latencies: list[float] = field(default_factory=list)
    error_kinds: Counter[str] = field(default_factory=Counter)


@dataclass
class SideResult:
    name: str
    seconds: float
    threads: list[ThreadResult]

    @property
    def ok(self) -> int:
        return sum(t.ok for t in self.threads)

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self.threads)

    @property
    def all_ok(self) -> int:
        return sum(t.all_ok for t in self.threads)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def percentile(self, fraction: float) -> float:
        samples = sorted(s for t in self.threads for s in t.latencies)
        if not samples:
            return float("nan")
        return samples[min(len(samples) - 1, int(fraction * len(samples)))]

    @property
    def error_kinds(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for t in self.threads:
            total.update(t.error_kinds)
        return total


class Window:
    """The shared clock: warm-up, then ``seconds`` of counting, then stop."""

    def __init__(self, warmup: float, seconds: float) -> None:
        self.warmup = warmup
        self.seconds = seconds
        self.opens = 0.0  # perf_counter() at which counting starts
        self.stop = threading.Event()

    def open(self) -> None:  # the barrier's action: runs once, when every thread is ready
        self.opens = time.perf_counter() + self.warmup

    @property
    def closes(self) -> float:
        return self.opens + self.seconds


def timed_threads(
    name: str,
    count: int,
    window: Window,
    body: Callable[[int, ThreadResult, Window, threading.Barrier], None],
) -> SideResult:
    """Start ``count`` threads running ``body`` and wait for them (interruptibly)."""
    barrier = threading.Barrier(count, action=window.open)
    results = [ThreadResult() for _ in range(count)]
    failures: list[BaseException] = []

    def target(index: int) -> None:
        try:
            body(index, results[index], window, barrier)
        except BaseException as exc:  # a setup failure: stop everyone, report it
            failures.append(exc)
            window.stop.set()
            barrier.abort()

    workers = [
        threading.Thread(target=target, args=(i,), name=f"{name}-{i}", daemon=True)
        for i in range(count)
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            while worker.is_alive():
                worker.join(0.2)
    finally:
        window.stop.set()
        for worker in workers:
            worker.join(30)
    if failures:  # the first real failure, not the broken barrier it caused elsewhere
        failures.sort(key=lambda f: isinstance(f, threading.BrokenBarrierError))
        raise RuntimeError(f"{name} side failed: {failures[0]!r}") from failures[0]
    return SideResult(name, window.seconds, results)


def record(result: ThreadResult, window: Window, began: float, error: BaseException | None) -> bool:
    """Count one attempt; returns False once the window is over."""
    ended = time.perf_counter()
    counted = window.opens <= ended <= window.closes
    if error is None:
        result.all_ok += 1
        if counted:
            result.ok += 1
            result.latencies.append(ended - began)
    elif counted:
        result.errors += 1
        result.error_kinds[type(error).__name__] += 1
    return ended < window.closes and not window.stop.is_set()


def server_cpu() -> float | None:
    """CPU seconds used so far by every PostgreSQL process of this machine (backends, WAL
    writer, ...), or None when none can be seen (no /proc)."""
    total, seen = 0.0, False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat_file:
                stat = stat_file.read()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")] != "postgres":
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        seen = True
    return total if seen else None


@dataclass
class CpuCost:
    client: float  # ms of this process's CPU per order
    server: float | None  # ms of PostgreSQL's CPU per order, None if it cannot be seen


def cpu_per_order(place_one: Callable[[int], None], count: int) -> CpuCost:
    """CPU per order of ``count`` calls of ``place_one`` on this thread, after 10% warm-up."""
    for i in range(max(1, count // 10)):
        place_one(i)
    server_before, client_before = server_cpu(), time.process_time()
    for i in range(count):
        place_one(i)
    server_after, client_after = server_cpu(), time.process_time()
    server = None
    if server_before is not None and server_after is not None:
        server = (server_after - server_before) / count * 1000
    return CpuCost((client_after - client_before) / count * 1000, server)


def print_table(sides: list[SideResult]) -> None:
    header = f"{'side':<10}{'orders':>10}{'errors':>8}{'seconds':>9}{'orders/s':>10}"
    print(header + f"{'p50 ms':>9}{'p95 ms':>9}")
    for side in sides:
        print(
            f"{side.name:<10}{side.ok:>10}{side.errors:>8}{side.seconds:>9.1f}{side.rate:>10.1f}"
            f"{side.percentile(0.50) * 1000:>9.2f}{side.percentile(0.95) * 1000:>9.2f}"
        )
        for kind, n in side.error_kinds.most_common(3):
            print(f"{'':<10}  error {kind}: {n}")


def place_until_closed(
    result: ThreadResult,
    window: Window,
    barrier: threading.Barrier,
    *,
    seed: int,
    items: Sequence[Item],
    place: Callable[[Item], None],
    refusals: tuple[type[BaseException], ...],
) -> None:
    """One thread's loop: after the barrier, place orders of random ``items`` until the window
    closes, counting each; ``refusals`` count as an order's error, anything else stops it."""
    rng = random.Random(seed)
    barrier.wait()
    running = True
    while running:
        item = items[rng.randrange(len(items))]
        began = time.perf_counter()
        error: BaseException | None = None
        try:
            place(item)
        except refusals as exc:
            error = exc
        running = record(result, window, began, error)
