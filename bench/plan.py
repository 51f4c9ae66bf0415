"""How big and how many: the full plan (the sizes the issue names) and the ``--quick`` smoke plan."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from bench.servers import Server, distribution, ours

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class Plan:
    rounds: int
    blob_bytes: int  # workload 1
    big_image_bytes: int  # workload 2, single layer
    small_layers: int  # workload 2, layer count
    small_layer_bytes: int
    concurrent_bytes: int  # workload 3
    concurrent_clients: int
    manifest_requests: int  # workload 4, per hey run
    manifest_concurrency: int
    proxy_image_bytes: int  # workload 5
    proxy_clients: int
    transfer_bytes: int  # workload 6

    def scaled(self, rounds: int | None) -> Plan:
        return self if rounds is None else replace(self, rounds=rounds)


FULL = Plan(
    rounds=3,
    blob_bytes=GIB,
    big_image_bytes=GIB,
    small_layers=200,
    small_layer_bytes=64 * 1024,
    concurrent_bytes=256 * MIB,
    concurrent_clients=20,
    manifest_requests=5000,
    manifest_concurrency=10,
    proxy_image_bytes=256 * MIB,
    proxy_clients=10,
    transfer_bytes=5 * GIB,
)

QUICK = Plan(
    rounds=1,
    blob_bytes=8 * MIB,
    big_image_bytes=8 * MIB,
    small_layers=10,
    small_layer_bytes=64 * 1024,
    concurrent_bytes=4 * MIB,
    concurrent_clients=20,
    manifest_requests=200,
    manifest_concurrency=10,
    proxy_image_bytes=4 * MIB,
    proxy_clients=10,
    transfer_bytes=16 * MIB,
)

ServerFactory = Callable[[Path], AbstractContextManager[Server]]
SIDES: dict[str, ServerFactory] = {"ours": ours, "theirs": distribution}
# Workloads 3 and 4 (many connections at once) also run ours with one worker process per core
# (``registry serve --workers N``, docs/configuration.md): Distribution's Go runtime uses every core by default.
WORKERS = max(2, os.cpu_count() or 1)
WORKERS_SUFFIX = f", ours with --workers {WORKERS}"
SIDES["ours-workers"] = partial(ours, workers=WORKERS)


def alternate(round_no: int, sides: tuple[str, ...] = ("ours", "theirs")) -> Iterator[str]:
    """Each round starts with another side (``ours`` first on even rounds of two sides): no side always runs on
    a colder machine."""
    shift = round_no % len(sides)
    yield from sides[shift:] + sides[:shift]


def record_as(who: str) -> list[tuple[str, str]]:
    """Where a side's value goes: (``ours``/``theirs``, metric-name suffix). Distribution's value is the
    baseline of both our rows (one process, ``--workers N``)."""
    if who == "theirs":
        return [("theirs", ""), ("theirs", WORKERS_SUFFIX)]
    return [("ours", WORKERS_SUFFIX if who == "ours-workers" else "")]


def human(size: int) -> str:
    """``1 GiB``, ``256 MiB``, ``64 KiB``: for metric names."""
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"
