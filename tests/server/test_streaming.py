"""Blob bodies stream through the real server with bounded memory (peak RSS read from /proc)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.serverproc import RegistryProcess

MIB = 1024 * 1024
RSS_LIMIT_MIB = 150


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def _pattern() -> bytes:
    return hashlib.sha256(b"seed").digest() * (MIB // 32)


def _body(total: int) -> Iterator[bytes]:
    chunk = _pattern()
    sent = 0
    while sent < total:
        piece = chunk[: min(MIB, total - sent)]
        sent += len(piece)
        yield piece


def _digest(total: int) -> str:
    h = hashlib.sha256()
    for piece in _body(total):
        h.update(piece)
    return f"sha256:{h.hexdigest()}"


def _roundtrip(registry: RegistryProcess, total: int, repo: str) -> None:
    digest = _digest(total)
    with httpx.Client(base_url=registry.url, timeout=120) as client:
        put = client.post(
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": digest},
            content=_body(total),
            headers={"Content-Length": str(total), "Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 201, put.text
        h = hashlib.sha256()
        received = 0
        with client.stream("GET", f"/v2/{repo}/blobs/{digest}") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-length"] == str(total)
            for piece in resp.iter_raw(MIB):
                h.update(piece)
                received += len(piece)
        assert received == total and f"sha256:{h.hexdigest()}" == digest


def test_256mib_blob_streams_with_bounded_memory(registry: RegistryProcess) -> None:
    _roundtrip(registry, 256 * MIB, "stream/small")
    peak = _peak_rss_mib(registry.pid)
    assert peak < RSS_LIMIT_MIB, f"server peak RSS {peak:.0f} MiB"


@pytest.mark.skipif(os.environ.get("REGISTRY_SKIP_2GIB") == "1", reason="disabled by REGISTRY_SKIP_2GIB=1")
def test_2gib_blob_streams_with_bounded_memory(registry: RegistryProcess) -> None:
    """The issue's bound: a 2 GiB upload and download keep the server's peak RSS under 150 MiB."""
    _roundtrip(registry, 2048 * MIB, "stream/large")
    peak = _peak_rss_mib(registry.pid)
    assert peak < RSS_LIMIT_MIB, f"server peak RSS {peak:.0f} MiB"


def test_chunked_transfer_encoding_upload(registry: RegistryProcess) -> None:
    """A body without Content-Length (Transfer-Encoding: chunked) still streams and verifies."""
    total = 8 * MIB + 17
    digest = _digest(total)
    with httpx.Client(base_url=registry.url, timeout=60) as client:
        start = client.post("/v2/stream/chunked/blobs/uploads/")
        assert start.status_code == 202
        patch = client.patch(start.headers["location"], content=_body(total))  # generator: chunked encoding
        assert patch.status_code == 202, patch.text
        assert patch.headers["range"] == f"0-{total - 1}"
        done = client.put(patch.headers["location"], params={"digest": digest})
        assert done.status_code == 201, done.text
        head = client.head(f"/v2/stream/chunked/blobs/{digest}")
        assert head.status_code == 200 and head.headers["content-length"] == str(total)
