"""Workload 7: the ceilings our numbers sit under, measured in the same run on the same machine.

- a null ASGI app on hypercorn's trio worker, configured as ``registry serve`` (HTTP/1.1 only, no access log): a
  ``PUT`` whose body it reads and drops (the HTTP server's own ingest limit, no hashing, no disk) and a ``GET`` of
  ``size`` bytes in 1 MiB pieces (its serve limit, no disk reads); and ``GET``/``HEAD`` of ``/small``, a 500-byte
  answer with the headers of a manifest, at the manifest workload's concurrency (its requests-per-second limit:
  what a manifest GET costs in hypercorn and h11 alone);
- sha256 in one core (``hashlib``, 1 MiB pieces): the hashing every ingest must do;
- writing the same bytes to a file and fsync'ing it: the disk part of an ingest.

The null app runs as ``python -m bench.ceiling PORT SIZE`` in its own process, as a server would.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import clients
from bench.payloads import MIB, pieces, write_blob
from bench.plan import Plan, human
from bench.results import Results
from bench.servers import Server, free_port, wait_port

Scope = dict[str, Any]
LABELS = {"ours_label": "this machine", "theirs_label": "–"}


SMALL = b"{" + b" " * 498 + b"}"
SMALL_HEADERS = [(b"content-type", b"application/vnd.oci.image.manifest.v1+json"),
                 (b"docker-content-digest", b"sha256:" + b"0" * 64), (b"etag", b'"sha256:' + b"0" * 64 + b'"'),
                 (b"content-length", str(len(SMALL)).encode())]


def null_app(size: int) -> Any:
    piece = b"\0" * MIB

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["path"] == "/small":
            await send({"type": "http.response.start", "status": 200, "headers": SMALL_HEADERS})
            await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else SMALL})
            return
        if scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(size).encode())]})
            left = size
            while left > 0:
                chunk = piece[: min(MIB, left)]
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    return app


def _serve(port: int, size: int) -> None:
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.alpn_protocols = ["http/1.1"]
    config.accesslog = None
    trio.run(serve, null_app(size), config)


def _hash_rate(path: Path) -> float:
    h = hashlib.sha256()
    started = time.perf_counter()
    with open(path, "rb") as fh:
        while piece := fh.read(MIB):
            h.update(piece)
    return path.stat().st_size / (time.perf_counter() - started) / 1e6


def _disk_rate(path: Path, size: int) -> float:
    started = time.perf_counter()
    with open(path, "wb") as fh:
        for piece in pieces(size, seed=5001):
            fh.write(piece)
        fh.flush()
        os.fsync(fh.fileno())
    rate = size / (time.perf_counter() - started) / 1e6
    path.unlink()
    return rate


def ceilings(plan: Plan, work: Path, results: Results) -> None:
    size = plan.blob_bytes
    label = human(size)
    blob = write_blob(work / "ceiling.bin", size, seed=5000)
    for _ in range(plan.rounds):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "bench.ceiling", str(port), str(size)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, proc)
            server = Server("null", f"http://127.0.0.1:{port}", proc.pid)
            _, put = clients.curl("-X", "PUT", "-T", str(blob.path), f"{server.url}/put")
            _, get = clients.curl(f"{server.url}/get")
            small = {method: clients.hey(f"{server.url}/small", method, plan.manifest_requests,
                                         plan.manifest_concurrency, "*/*") for method in ("GET", "HEAD")}
        finally:
            proc.terminate()
            proc.wait(15)
        measured = {
            f"hypercorn null app, PUT {label} (body read and dropped)": size / put / 1e6,
            f"hypercorn null app, GET {label} (1 MiB pieces)": size / get / 1e6,
            f"sha256, one core ({label} file, hashlib)": _hash_rate(blob.path),
            f"disk write + fsync ({label})": _disk_rate(work / "disk.bin", size),
        }
        for name, value in measured.items():
            results.add("ceiling", name, "MB/s", "higher", "ours", value, **LABELS)
        for method, rate in small.items():
            results.add("ceiling", f"hypercorn null app, {method} of a 500-byte answer "
                        f"({plan.manifest_concurrency} connections)", "req/s", "higher", "ours", rate, **LABELS)
    blob.path.unlink()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
