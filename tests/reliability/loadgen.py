"""A bounded mixed load for the load suite: pullers, pushers and listers on fixed thread counts, plus an
RSS sampler that reads ``VmRSS`` from ``/proc/<pid>/status`` of each server.

Every answer is checked: pulls re-hash the bytes against their digest; any unexpected status, transport
error or wrong byte counts as an error (the first few are kept verbatim for the failure message).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests.imagebuild import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST

ACCEPT = {"Accept": OCI_MANIFEST}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Counts:
    requests: int = 0
    errors: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, kind: str, n: int = 1) -> None:
        with self.lock:
            self.requests += n
            self.by_kind[kind] = self.by_kind.get(kind, 0) + n

    def error(self, message: str) -> None:
        with self.lock:
            self.requests += 1
            self.errors += 1
            if len(self.samples) < 10:
                self.samples.append(message[:300])


def push_image(client: httpx.Client, repo: str, tag: str, layers: list[bytes]) -> str:
    """Push config + ``layers`` + manifest under ``tag``; return the manifest digest. Raises on failure."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    for blob in [config, *layers]:
        r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(blob)}, content=blob)
        if r.status_code != 201:
            raise AssertionError(f"blob push {repo}: {r.status_code} {r.text[:200]}")
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256(b), "size": len(b)} for b in layers],
    }).encode()
    r = client.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    if r.status_code != 201:
        raise AssertionError(f"manifest push {repo}:{tag}: {r.status_code} {r.text[:200]}")
    return sha256(manifest)


def pull_image(client: httpx.Client, repo: str, tag: str, counts: Counts) -> None:
    """GET the manifest by tag, then every blob it names; each checked against its digest."""
    r = client.get(f"/v2/{repo}/manifests/{tag}", headers=ACCEPT)
    if r.status_code != 200 or sha256(r.content) != r.headers.get("docker-content-digest"):
        counts.error(f"pull manifest {repo}:{tag}: {r.status_code} {r.text[:200]}")
        return
    counts.ok("manifest GET")
    manifest = json.loads(r.content)
    for descriptor in [manifest["config"], *manifest["layers"]]:
        blob = client.get(f"/v2/{repo}/blobs/{descriptor['digest']}")
        if blob.status_code != 200 or sha256(blob.content) != descriptor["digest"]:
            counts.error(f"pull blob {repo}@{descriptor['digest']}: {blob.status_code} ({len(blob.content)} bytes)")
            return
        counts.ok("blob GET")


@dataclass
class MixedLoad:
    """``images``: ``(repo, tag)`` seeded before the load; pushes go to ``load/push-<n>`` repositories."""

    images: list[tuple[str, str]]
    counts: Counts = field(default_factory=Counts)
    pushed: int = 0

    def _loop(self, url: str, stop: threading.Event, step: Callable[[httpx.Client, random.Random], None],
              seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, timeout=60) as client:
            while not stop.is_set():
                try:
                    step(client, rng)
                except (httpx.HTTPError, AssertionError, ValueError, KeyError) as exc:
                    self.counts.error(f"{step.__name__}: {exc!r}")

    def pull(self, client: httpx.Client, rng: random.Random) -> None:
        repo, tag = rng.choice(self.images)
        pull_image(client, repo, tag, self.counts)

    def push(self, client: httpx.Client, rng: random.Random) -> None:
        with self.counts.lock:
            self.pushed += 1
            n = self.pushed
        repo = f"load/push-{n % 8}"
        layers = [rng.randbytes(rng.choice((4096, 65536, 262144))) + str(n).encode()]
        push_image(client, repo, f"t{n % 16}", layers)  # tags move as pushes go round
        self.counts.ok("push (blobs + manifest)", 3)
        if n % 4 == 0:  # bounded: old pushes are deleted again (tags go with their manifest)
            r = client.get(f"/v2/{repo}/manifests/t{(n + 8) % 16}", headers=ACCEPT)
            if r.status_code == 200:
                deleted = client.delete(f"/v2/{repo}/manifests/{r.headers['docker-content-digest']}")
                # 404: a concurrent pusher moved or deleted it meanwhile
                if deleted.status_code not in (202, 404):
                    raise AssertionError(f"delete {repo}: {deleted.status_code} {deleted.text[:200]}")
            elif r.status_code != 404:
                raise AssertionError(f"GET {repo}: {r.status_code} {r.text[:200]}")
            self.counts.ok("delete")

    def list_tags(self, client: httpx.Client, rng: random.Random) -> None:
        repo, tag = rng.choice(self.images)
        r = client.get(f"/v2/{repo}/tags/list")
        if r.status_code != 200 or tag not in r.json()["tags"]:
            raise AssertionError(f"tags/list {repo}: {r.status_code} {r.text[:200]}")
        catalog = client.get("/v2/_catalog", params={"n": 100})
        if catalog.status_code != 200:
            raise AssertionError(f"catalog: {catalog.status_code} {catalog.text[:200]}")
        self.counts.ok("tags/list + catalog", 2)

    def threads(self, url: str, stop: threading.Event, pullers: int, pushers: int, listers: int,
                pulls_only: bool = False) -> list[threading.Thread]:
        plan = [(self.pull, pullers)] + ([] if pulls_only else [(self.push, pushers), (self.list_tags, listers)])
        return [
            threading.Thread(target=self._loop, args=(url, stop, step, hash((url, step.__name__, i))), daemon=True)
            for step, count in plan
            for i in range(count)
        ]


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from ``/proc/<pid>/status``."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class RssSampler:
    """Samples each pid's RSS every ``interval`` seconds in a thread until ``stop``."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: dict[str, list[tuple[float, int]]] = {name: [] for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                self.samples[name].append((time.monotonic() - start, rss_kib(pid)))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def window(self, name: str, start: float, end: float) -> int:
        """Median RSS (KiB) of ``name``'s samples taken between ``start`` and ``end`` seconds."""
        values = sorted(v for t, v in self.samples[name] if start <= t <= end)
        assert values, f"no RSS samples for {name} in {start}-{end}s"
        return values[len(values) // 2]
