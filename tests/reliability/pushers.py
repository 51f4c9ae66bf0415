"""A push worker for the crash suite: one repository, one operation at a time, recorded in a RepoModel.

Operations: blob pushes (single POST with ``?digest=``, POST then one PUT with the body, chunked PATCHes
then PUT), manifest puts (by tag or by digest), tag moves onto an existing manifest, image indexes,
manifest deletes by digest, tag deletes and blob deletes. Each write is recorded as acknowledged when its
success status arrived, or as in flight when the connection died under it (the server was killed). A
connection refused never reached the server and changes nothing. Any other answer is a bug: it is kept
in ``errors`` and fails the test.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit

import httpx

from tests.imagebuild import OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST
from tests.reliability.model import Content, Key, RepoModel, Tally, Value

KIB = 1024
SIZES = (1 * KIB, 48 * KIB, 300 * KIB, 2 * 1024 * KIB)
SIZE_WEIGHTS = (4, 3, 2, 1)
TAGS = ("latest", "stable", "v1", "v2")
BASE_LAYER = hashlib.sha256(b"shared base").digest() * (256 * KIB // 32)  # pushed by every worker


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Crashed(Exception):
    """The server is gone: this worker stops for the round."""


@dataclass
class UploadTrack:
    """A chunked upload interrupted by the crash: finished after the restart from where the server says."""

    path: str  # the session URL's path (the port changes on restart)
    data: bytes
    digest: str
    acked: int  # bytes acknowledged by a 202
    boundaries: set[int]  # sizes the session may show: chunk ends at or after ``acked``
    finishing: bool = False  # the final PUT was in flight


@dataclass
class PushWorker:
    model: RepoModel
    content: Content
    tally: Tally
    rng: random.Random
    uploads: list[UploadTrack] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    counter: int = 0

    # -- plumbing ---------------------------------------------------------------------------------------
    def run(self, url: str, stop: threading.Event) -> None:
        """Run random operations against ``url`` until ``stop`` is set or the server dies."""
        ops: list[tuple[Callable[[httpx.Client], None], int]] = [
            (self.push_blob, 6),
            (self.push_manifest, 5),
            (self.retag, 2),
            (self.push_index, 1),
            (self.delete_manifest, 1),
            (self.delete_tag, 1),
            (self.delete_blob, 2),
        ]
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                op = self.rng.choices([o for o, _ in ops], [w for _, w in ops])[0]
                try:
                    op(client)
                except Crashed:
                    return
                except AssertionError as exc:
                    self.errors.append(str(exc))
                    return

    def _send(self, send: Callable[[], httpx.Response]) -> httpx.Response | None:
        """The response, or None when the connection died after the request may have reached the server."""
        try:
            return send()
        except httpx.ConnectError:
            raise Crashed from None
        except httpx.TransportError:
            return None

    def _step(self, send: Callable[[], httpx.Response], ok: int) -> httpx.Response:
        """A request whose effect the model does not track (upload session steps)."""
        response = self._send(send)
        if response is None:
            raise Crashed
        assert response.status_code == ok, f"{self.model.repo}: {response.status_code} {response.text[:300]}"
        return response

    def _commit(self, what: str, after: Mapping[Key, Value], send: Callable[[], httpx.Response], ok: int) -> None:
        """A write that moves ``after``'s keys: acknowledged on ``ok``, in flight if the server died."""
        response = self._send(send)
        if response is None:
            self.model.in_flight(what, after)
            self.tally.in_flight += 1
            raise Crashed
        assert response.status_code == ok, f"{what} {self.model.repo}: {response.status_code} {response.text[:300]}"
        self.model.acknowledged(after)
        self.tally.ack(what)

    def _fresh(self, size: int) -> bytes:
        self.counter += 1
        return f"{self.model.repo}#{self.counter}#".encode() + self.rng.randbytes(size)

    # -- blobs ------------------------------------------------------------------------------------------
    def push_blob(self, client: httpx.Client, data: bytes | None = None) -> str:
        data = data if data is not None else self._fresh(self.rng.choices(SIZES, SIZE_WEIGHTS)[0])
        digest = sha256(data)
        self.content.add(digest, data)
        after = {self.model.key("blob", digest): True}
        repo = self.model.repo
        style = self.rng.choice(("single", "post+put", "chunked"))
        if style == "single":
            url = f"/v2/{repo}/blobs/uploads/"
            self._commit("blob push (POST ?digest)", after, lambda: client.post(url, params={"digest": digest},
                                                                               content=data), 201)
            return digest
        location = urlsplit(self._step(lambda: client.post(f"/v2/{repo}/blobs/uploads/"), 202).headers["location"])
        path = location.path
        if style == "post+put":
            self._commit("blob push (POST+PUT)", after, lambda: client.put(path, params={"digest": digest},
                                                                          content=data), 201)
            return digest
        track = UploadTrack(path, data, digest, 0, {0})
        self.uploads.append(track)
        chunk = max(len(data) // self.rng.randint(2, 4), 1)
        for start in range(0, len(data), chunk):
            piece = data[start : start + chunk]
            end = start + len(piece)
            track.boundaries.add(end)
            headers = {"Content-Range": f"{start}-{end - 1}"}
            self._step(partial(client.patch, track.path, content=piece, headers=headers), 202)
            track.acked = end
            track.boundaries = {end}
        track.finishing = True
        self._commit("blob push (chunked)", after, lambda: client.put(track.path, params={"digest": digest}), 201)
        self.uploads.remove(track)
        return digest

    def delete_blob(self, client: httpx.Client) -> None:
        candidates = [d for d in self.model.present("blob") if d not in self.model.pinned]
        if not candidates:
            return
        digest = self.rng.choice(candidates)
        url = f"/v2/{self.model.repo}/blobs/{digest}"
        self._commit("blob delete", {self.model.key("blob", digest): False}, lambda: client.delete(url), 202)

    # -- manifests --------------------------------------------------------------------------------------
    def _put_manifest(self, client: httpx.Client, what: str, data: bytes, media_type: str, tag: str | None) -> None:
        digest = sha256(data)
        self.content.add(digest, data, media_type)
        after: dict[Key, Value] = {self.model.key("manifest", digest): True}
        if tag is not None:
            after[self.model.key("tag", tag)] = digest
        url = f"/v2/{self.model.repo}/manifests/{tag or digest}"
        headers = {"Content-Type": media_type}
        self._commit(what, after, lambda: client.put(url, content=data, headers=headers), 201)

    def _maybe_tag(self) -> str | None:
        return self.rng.choice((*TAGS, None))

    def push_manifest(self, client: httpx.Client) -> None:
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": self.counter}).encode()
        layers = [BASE_LAYER, self._fresh(self.rng.choice(SIZES[:3]))]
        blobs = [config, *layers]
        self.model.pinned.update(sha256(b) for b in blobs)  # pinned before pushed: never deleted from now on
        for blob in blobs:
            if self.model.value(self.model.key("blob", sha256(blob))) is not True or blob is BASE_LAYER:
                self.push_blob(client, blob)  # the base layer again: concurrent pushes of shared content
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256(b), "size": len(b)} for b in layers],
            "annotations": {"n": f"{self.model.repo}#{self.counter}"},
        }
        tag = self._maybe_tag()
        self._put_manifest(client, "manifest put" if tag is None else "manifest put + tag", _canonical(manifest),
                           OCI_MANIFEST, tag)

    def retag(self, client: httpx.Client) -> None:
        """Move a tag onto a manifest that is already there (PUT of the same bytes under the tag)."""
        manifests = self.model.present("manifest")
        if not manifests:
            return
        digest = self.rng.choice(manifests)
        data = self.content.body[digest]
        self._put_manifest(client, "tag move", data, self.content.media_type[digest], self.rng.choice(TAGS))

    def push_index(self, client: httpx.Client) -> None:
        images = [d for d in self.model.present("manifest") if self.content.media_type[d] == OCI_MANIFEST]
        if len(images) < 2:
            return
        children = self.rng.sample(images, 2)
        self.model.pinned.update(children)
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": d, "size": len(self.content.body[d]),
                 "platform": {"architecture": arch, "os": "linux"}}
                for d, arch in zip(children, ("amd64", "arm64"), strict=True)
            ],
        }
        self._put_manifest(client, "index put", _canonical(index), OCI_INDEX, self._maybe_tag())

    def delete_manifest(self, client: httpx.Client) -> None:
        candidates = [d for d in self.model.present("manifest") if d not in self.model.pinned]
        if not candidates:
            return
        digest = self.rng.choice(candidates)
        after: dict[Key, Value] = {self.model.key("manifest", digest): False}
        after.update({self.model.key("tag", t): None for t, d in self.model.tags().items() if d == digest})
        url = f"/v2/{self.model.repo}/manifests/{digest}"
        self._commit("manifest delete", after, lambda: client.delete(url), 202)

    def delete_tag(self, client: httpx.Client) -> None:
        tags = sorted(self.model.tags())
        if not tags:
            return
        tag = self.rng.choice(tags)
        url = f"/v2/{self.model.repo}/manifests/{tag}"
        self._commit("tag delete", {self.model.key("tag", tag): None}, lambda: client.delete(url), 202)


def _canonical(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
