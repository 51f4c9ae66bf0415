"""Build OCI image layouts in pure Python (no Docker): deterministic gzip'ed tar layers, a config and a manifest.

``build_image`` writes a single-platform image, ``build_index`` a multi-platform image index; both write a complete
``oci-layout`` directory (``oci-layout``, ``index.json``, ``blobs/sha256/…``) that ``skopeo copy oci:DIR:TAG``
reads, and return every digest so tests can compare what a client pulled with what was built.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "2024-01-01T00:00:00Z"
MTIME = 1704067200  # CREATED as a Unix time

Layer = Mapping[str, bytes]
"""One layer: path inside the image (``hello.txt`` or ``etc/motd``) → file content."""


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(files: Layer) -> bytes:
    """An uncompressed tar with fixed owner, mode and mtime: the same files always give the same bytes."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass(frozen=True)
class BuiltImage:
    """A single-platform image written into a layout (``layout`` is ``None`` for images inside an index)."""

    manifest: bytes
    manifest_digest: str
    config: bytes
    config_digest: str
    layers: list[bytes]  # the gzip'ed blobs, in manifest order
    layer_digests: list[str]
    diff_ids: list[str]  # sha256 of the uncompressed tars
    platform: dict[str, str]
    layout: Path | None = None
    tag: str = ""

    @property
    def ref(self) -> str:
        """``oci:DIR:TAG`` for skopeo."""
        return f"oci:{self.layout}:{self.tag}"


@dataclass(frozen=True)
class BuiltIndex:
    """A multi-platform image index written into a layout; ``images`` maps ``os/arch`` to each child image."""

    index: bytes
    index_digest: str
    images: dict[str, BuiltImage]
    layout: Path
    tag: str

    @property
    def ref(self) -> str:
        return f"oci:{self.layout}:{self.tag}"


class _Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(self, data: bytes) -> str:
        d = sha256(data)
        (self.blobs / d.removeprefix("sha256:")).write_bytes(data)
        return d

    def write_index(self, media_type: str, data: bytes, tag: str) -> None:
        entry = {"mediaType": media_type, "digest": sha256(data), "size": len(data), "annotations": {REF_NAME: tag}}
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
        (self.root / "index.json").write_text(json.dumps(doc))


def _default_layers(text: str, count: int) -> list[dict[str, bytes]]:
    layers = [{"hello.txt": text.encode()}]
    layers += [{f"layer{i}.txt": f"{text} / layer {i}\n".encode()} for i in range(1, count)]
    return layers


def _write_image(out: _Layout, layers: Sequence[Layer], arch: str, variant: str | None) -> BuiltImage:
    tars = [tar_bytes(files) for files in layers]
    gzipped = [gzip.compress(t, compresslevel=6, mtime=0) for t in tars]
    diff_ids = [sha256(t) for t in tars]
    platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
    config_doc: dict[str, Any] = {
        "created": CREATED,
        **platform,
        "config": {"Env": ["PATH=/"], "Cmd": ["/hello"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": f"imagebuild layer {i}"} for i in range(len(tars))],
    }
    config = json.dumps(config_doc, sort_keys=True).encode()
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": out.put(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": out.put(g), "size": len(g)} for g in gzipped],
    }
    manifest = json.dumps(manifest_doc, indent=2).encode()
    return BuiltImage(
        manifest=manifest,
        manifest_digest=out.put(manifest),
        config=config,
        config_digest=sha256(config),
        layers=gzipped,
        layer_digests=[sha256(g) for g in gzipped],
        diff_ids=diff_ids,
        platform=platform,
    )


def build_image(
    dest: Path,
    *,
    text: str = "hello from imagebuild\n",
    layer_count: int = 2,
    layers: Sequence[Layer] | None = None,
    arch: str = "amd64",
    tag: str = "latest",
) -> BuiltImage:
    """Write a linux/``arch`` image to the OCI layout ``dest``, tagged ``tag``.

    Without ``layers``: ``layer_count`` layers, the first holding ``/hello.txt`` = ``text``, the others one small
    file each. Everything (tar headers, gzip header, JSON) is deterministic.
    """
    out = _Layout(dest)
    image = _write_image(out, layers if layers is not None else _default_layers(text, layer_count), arch, None)
    out.write_index(OCI_MANIFEST, image.manifest, tag)
    return replace(image, layout=dest, tag=tag)


def build_index(
    dest: Path,
    *,
    text: str = "hello from imagebuild",
    platforms: Sequence[tuple[str, str | None]] = (("amd64", None), ("arm64", "v8")),
    tag: str = "latest",
) -> BuiltIndex:
    """Write a multi-platform image index (default linux/amd64 + linux/arm64/v8) to the OCI layout ``dest``.

    Each platform's image has one layer whose ``/hello.txt`` names the architecture, so every child differs.
    """
    out = _Layout(dest)
    images: dict[str, BuiltImage] = {}
    entries = []
    for arch, variant in platforms:
        image = _write_image(out, [{"hello.txt": f"{text} ({arch})\n".encode()}], arch, variant)
        images[f"linux/{arch}"] = image
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": image.manifest_digest,
                "size": len(image.manifest),
                "platform": image.platform,
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, indent=2).encode()
    index_digest = out.put(index)
    out.write_index(OCI_INDEX, index, tag)
    return BuiltIndex(index=index, index_digest=index_digest, images=images, layout=dest, tag=tag)


def layer_files(gzipped_tar: bytes) -> dict[str, bytes]:
    """Regular files of a (possibly gzip'ed) tar layer: path → content."""
    data = gzip.decompress(gzipped_tar) if gzipped_tar[:2] == b"\x1f\x8b" else gzipped_tar
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            extracted = tar.extractfile(member) if member.isfile() else None
            if extracted is not None:
                files[member.name.removeprefix("./").lstrip("/")] = extracted.read()
    return files
