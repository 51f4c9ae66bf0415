"""kill -9 the primary at random points during concurrent pushes, round after round, on one data directory.

Each round: workers push blobs (single POST, POST+PUT, chunked), manifests and indexes, move and delete
tags, delete manifests and blobs; after a random delay the server gets SIGKILL. The restarted server must
show every acknowledged write exactly (bytes re-verified), each write in flight either wholly done or not at
all, nothing that was never written, and interrupted chunked uploads must resume from a chunk boundary at
or after the last acknowledged one. ``registry fsck`` must then be clean.

kill -9 keeps the page cache, so it proves crash consistency, not durability against power loss (that
rests on the fsync ordering documented in registry/storage/fs_blobs.py).

Fast: 5 rounds (CI). Long: ``RELIABILITY_CRASH_ROUNDS=50 .venv/bin/pytest -m slow tests/reliability -k crash -s``.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest

from tests.reliability.check import check_after_restart, start_fsck
from tests.reliability.model import Content, RepoModel, Tally
from tests.reliability.pushers import PushWorker
from tests.serverproc import RegistryProcess

WORKERS = 8
ACKS_PER_ROUND = (15, 45)
ROUND_CAP = 60.0  # seconds of pushing at most per round
STARTUP = 120.0  # seconds; generous: a loaded CI machine takes many seconds to import and bind


def run_crash_rounds(data_dir: Path, rounds: int, seed: int) -> Tally:
    rng = random.Random(seed)
    content, tally = Content(), Tally()
    workers = [
        PushWorker(RepoModel(f"crash/w{i}"), content, tally, random.Random(seed * 1000 + i)) for i in range(WORKERS)
    ]
    proc = RegistryProcess(data_dir).start(timeout=STARTUP)
    try:
        for round_no in range(1, rounds + 1):
            stop = threading.Event()
            threads = [threading.Thread(target=w.run, args=(proc.url, stop)) for w in workers]
            for t in threads:
                t.start()
            # A random point: after a random number of acknowledged writes (so a slow machine still does
            # work each round), then a random fraction of a second more, in the middle of whatever runs.
            target = tally.acked_total + rng.randint(*ACKS_PER_ROUND)
            deadline = time.monotonic() + ROUND_CAP
            while tally.acked_total < target and time.monotonic() < deadline and any(t.is_alive() for t in threads):
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.5))
            proc.kill()
            stop.set()
            for t in threads:
                t.join(60)
            errors = [f"{w.model.repo}: {m}" for w in workers for m in w.errors]
            assert not errors, f"round {round_no}: unexpected answers before the kill: {errors}"

            checking = start_fsck(data_dir)  # the data exactly as the crash left it, beside the restart
            proc = RegistryProcess(data_dir).start(timeout=STARTUP)
            problems = check_after_restart(proc.url, workers, content, tally)
            assert not problems, f"round {round_no} (seed {seed}):\n" + "\n".join(problems[:40])
            out, err = checking.communicate(timeout=300)
            assert checking.returncode == 0, f"round {round_no}: fsck\n{out}{err}"
            print(f"round {round_no}: {tally.acked_total} acknowledged, {tally.in_flight} in flight so far; "
                  f"fsck: {out.strip().splitlines()[-1]}")
    finally:
        proc.stop()
    print(f"crash consistency: {rounds} rounds of kill -9, writes acknowledged {tally.acked_total} "
          f"{dict(sorted(tally.acked.items()))}, in flight at a kill {tally.in_flight} "
          f"(landed {tally.landed_unacked}), keys checked {tally.keys_checked} "
          f"(acknowledged state {tally.acked_keys_checked}), uploads resumed {tally.uploads_resumed}, 0 lost")
    return tally


def test_kill9_rounds_lose_no_acknowledged_write(tmp_path: Path) -> None:
    tally = run_crash_rounds(tmp_path / "data", rounds=5, seed=int(os.environ.get("RELIABILITY_SEED", "6")))
    assert tally.acked_total >= 75, f"only {tally.acked_total} writes acknowledged: the rounds proved little"
    assert tally.in_flight >= 5, "no round caught a write in flight"


@pytest.mark.slow
def test_kill9_rounds_long(tmp_path: Path) -> None:
    rounds = int(os.environ.get("RELIABILITY_CRASH_ROUNDS", "50"))
    seed = int(os.environ.get("RELIABILITY_SEED", str(random.randrange(1 << 30))))
    print(f"seed {seed}")
    tally = run_crash_rounds(tmp_path / "data", rounds=rounds, seed=seed)
    assert tally.acked_total >= 15 * rounds
