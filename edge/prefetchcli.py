"""``edge prefetch --edge-url URL IMAGE...``: ask a running edge to warm its cache (``POST /edge/prefetch``) and show
its progress — one updating status line on a terminal, one line per manifest or blob otherwise.

IMAGE is ``[HOST/]REPOSITORY[:TAG|@DIGEST]`` (HOST, recognised by a dot, a colon or ``localhost``, is dropped: the
edge serves one upstream). Credentials (``--username`` with ``--password-file``) are sent to the edge as Basic
auth, which in passthrough mode is checked and forwarded to the primary.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import httpx

MIB = 1024 * 1024


def human(size: int) -> str:
    return f"{size / MIB:.1f} MiB" if size >= MIB else f"{size / 1024:.1f} KiB"


def split_image(image: str) -> tuple[str, str]:
    """``[HOST/]REPO[:TAG|@DIGEST]`` → (repository, reference); the reference defaults to ``latest``."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        image = rest
    if "@" in image:
        repo, _, digest = image.partition("@")
        return repo, digest
    repo, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return repo, tag
    return image, "latest"


class ProgressView:
    """Renders progress lines of one image."""

    def __init__(self, out: TextIO, image: str, tty: bool) -> None:
        self.out, self.image, self.tty = out, image, tty
        self.blobs = self.cached = self.manifests = 0
        self.fetched = 0
        self.drawn = False  # a status line is on the terminal

    def update(self, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind == "blob":
            self.blobs += 1
            self.cached += bool(item.get("cached"))
            self.fetched += 0 if item.get("cached") else int(item.get("size", 0))
        elif kind == "manifest":
            self.manifests += 1
        if self.tty:
            status = (
                f"\r{self.image}: {self.manifests} manifest(s), {self.blobs} blob(s) "
                f"({self.cached} already cached), {human(self.fetched)} fetched"
            )
            self.out.write(status)
            self.drawn = True
        elif kind in ("blob", "manifest"):
            what = "cached " if item.get("cached") else ""
            line = f"{self.image}: {kind} {item.get('digest')} {what}{item.get('platform', '')}"
            self.out.write(line.rstrip() + "\n")
        self.out.flush()

    def finish(self, item: dict[str, Any]) -> None:
        if self.drawn:
            self.out.write("\n")
        if item.get("type") == "done":
            self.out.write(
                f"{self.image}: done, {item.get('digest')}: {item.get('manifests')} manifest(s), {item.get('blobs')}"
                f" blob(s), {human(int(item.get('bytes_fetched', 0)))} fetched\n"
            )
        else:
            self.out.write(f"{self.image}: failed: {item.get('code')}: {item.get('message')}\n")
        self.out.flush()


def _lines(response: httpx.Response) -> Iterable[dict[str, Any]]:
    for line in response.iter_lines():
        if line.strip():
            doc = json.loads(line)
            if isinstance(doc, dict):
                yield doc


def prefetch_images(
    edge_url: str, images: list[str], headers: dict[str, str], out: TextIO = sys.stdout, timeout: float = 3600.0
) -> int:
    """Prefetch each image in turn. Returns 0 when all were cached, 1 otherwise."""
    failed = 0
    tty = out.isatty()
    with httpx.Client(base_url=edge_url.rstrip("/"), headers=headers, timeout=httpx.Timeout(timeout, connect=10)) as c:
        for image in images:
            repo, reference = split_image(image)
            view = ProgressView(out, image, tty)
            try:
                with c.stream("POST", "/edge/prefetch", json={"repository": repo, "reference": reference}) as r:
                    if r.status_code != 200:
                        r.read()
                        try:
                            error = r.json()["errors"][0]
                        except (ValueError, KeyError, IndexError, TypeError):
                            error = {"code": f"HTTP {r.status_code}", "message": r.text[:200]}
                        view.finish({"type": "error", **error})
                        failed += 1
                        continue
                    last: dict[str, Any] = {"type": "error", "code": "INCOMPLETE", "message": "the stream ended early"}
                    for item in _lines(r):
                        if item.get("type") in ("done", "error"):
                            last = item
                        else:
                            view.update(item)
                    view.finish(last)
                    failed += last.get("type") != "done"
            except httpx.HTTPError as exc:
                view.finish({"type": "error", "code": type(exc).__name__, "message": str(exc)})
                failed += 1
    return 1 if failed else 0
