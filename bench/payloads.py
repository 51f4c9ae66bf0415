"""What the workloads send: blob files of any size and OCI image layouts (``skopeo copy oci:DIR:TAG`` reads them).

Big payloads are pseudo-random (a random MiB with a counter stamped into each copy, so nothing deduplicates or
compresses) and written in 1 MiB pieces with the digest computed on the way; the big image's layer is a tar
inside a gzip stream of stored (level 0) blocks, so building it costs no compression time and clients still see
an ordinary ``tar+gzip`` layer.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.imagebuild import OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, REF_NAME, build_image, sha256

MIB = 1024 * 1024


@dataclass(frozen=True)
class Blob:
    path: Path
    digest: str
    size: int


@dataclass(frozen=True)
class Image:
    """An OCI layout holding one image tagged ``tag``; ``layer_digests`` in manifest order."""

    layout: Path
    tag: str
    manifest: bytes
    manifest_digest: str
    layer_digests: list[str]
    size: int  # bytes of all layers

    @property
    def ref(self) -> str:
        return f"oci:{self.layout}:{self.tag}"


def pieces(size: int, seed: int) -> Iterator[bytes]:
    """``size`` pseudo-random bytes in pieces of at most 1 MiB; a different ``seed`` gives different bytes."""
    block = os.urandom(MIB)
    done = 0
    counter = 0
    while done < size:
        piece = block[:-16] + seed.to_bytes(8, "big") + counter.to_bytes(8, "big")
        piece = piece[: size - done]
        done += len(piece)
        counter += 1
        yield piece


def write_blob(path: Path, size: int, seed: int) -> Blob:
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        for piece in pieces(size, seed):
            h.update(piece)
            fh.write(piece)
    return Blob(path, f"sha256:{h.hexdigest()}", size)


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _HashingWriter:
    """Forwards writes to ``target`` and hashes them."""

    def __init__(self, target: _Sink) -> None:
        self.target = target
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.target.write(data)


def _write_big_layer(blobs: Path, size: int, seed: int) -> tuple[str, int, str]:
    """One tar (a single file of ``size`` bytes) in gzip stored blocks → (digest, blob size, diff_id)."""
    tmp = blobs / "layer.tmp"
    info = tarfile.TarInfo("payload.bin")
    info.size, info.mode, info.mtime = size, 0o644, 1704067200
    with open(tmp, "wb") as fh:
        blob = _HashingWriter(fh)
        with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=0, mtime=0) as gz:  # type: ignore[call-overload]
            tar = _HashingWriter(gz)
            tar.write(info.tobuf(tarfile.PAX_FORMAT))
            for piece in pieces(size, seed):
                tar.write(piece)
            tar.write(b"\0" * (-size % 512) + b"\0" * 1024)
            tar.write(b"\0" * (-tar.size % tarfile.RECORDSIZE))
    digest = f"sha256:{blob.hash.hexdigest()}"
    tmp.rename(blobs / digest.removeprefix("sha256:"))
    return digest, blob.size, f"sha256:{tar.hash.hexdigest()}"


def big_image(dest: Path, size: int, seed: int, tag: str = "big") -> Image:
    """A single-layer linux/amd64 image whose layer carries ``size`` bytes of pseudo-random data."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    layer, layer_size, diff_id = _write_big_layer(blobs, size, seed)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer, "size": layer_size}],
        }
    ).encode()
    for doc in (config, manifest):
        (blobs / sha256(doc).removeprefix("sha256:")).write_bytes(doc)
    entry = {"mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": len(manifest),
             "annotations": {REF_NAME: tag}}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}))
    return Image(dest, tag, manifest, sha256(manifest), [layer], layer_size)


def many_layer_image(dest: Path, count: int, layer_bytes: int, tag: str = "small") -> Image:
    """An image of ``count`` layers, each one random file of ``layer_bytes`` (gzip'ed by tests.imagebuild)."""
    layers = [{f"file{i}.bin": os.urandom(layer_bytes)} for i in range(count)]
    built = build_image(dest, layers=layers, tag=tag)
    return Image(dest, tag, built.manifest, built.manifest_digest, built.layer_digests,
                 sum(len(x) for x in built.layers))
