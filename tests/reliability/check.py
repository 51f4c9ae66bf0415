"""After a restart: read back every key of every model over HTTP, re-verify bytes, finish interrupted uploads.

Observations are strict: a blob shown at all must hash to its digest and equal the bytes pushed; a manifest
must be byte-identical with its media type; a tag must name a manifest that was pushed; the tag list and the
catalog may name nothing the workers never wrote. Anything else is reported as a problem.
"""

from __future__ import annotations

import hashlib
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.reliability.model import Content, Key, Tally, Value
from tests.reliability.pushers import PushWorker, UploadTrack
from tests.serverproc import BIN

ACCEPT = ", ".join(
    ["application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"]
)


class Observer:
    def __init__(self, client: httpx.Client, content: Content) -> None:
        self.client = client
        self.content = content
        self.problems: list[str] = []

    def _absent(self, response: httpx.Response, code: str, what: str) -> bool:
        if response.status_code == 404 and response.json()["errors"][0]["code"] == code:
            return True
        self.problems.append(f"{what}: {response.status_code} {response.text[:200]}")
        return False

    def observe(self, key: Key) -> Value:
        kind, repo, name = key
        if kind == "blob":
            r = self.client.get(f"/v2/{repo}/blobs/{name}")
            if r.status_code != 200:
                self._absent(r, "BLOB_UNKNOWN", f"GET blob {repo}@{name}")
                return False
            if "sha256:" + hashlib.sha256(r.content).hexdigest() != name or r.content != self.content.body[name]:
                self.problems.append(f"blob {repo}@{name}: served {len(r.content)} bytes that are not its content")
            return True
        r = self.client.get(f"/v2/{repo}/manifests/{name}", headers={"Accept": ACCEPT})
        if r.status_code != 200:
            self._absent(r, "MANIFEST_UNKNOWN", f"GET manifest {repo}:{name}")
            return False if kind == "manifest" else None
        digest = r.headers.get("docker-content-digest", "")
        media_type = r.headers.get("content-type")
        if r.content != self.content.body.get(digest) or media_type != self.content.media_type.get(digest):
            self.problems.append(f"manifest {repo}:{name} -> {digest}: not the bytes/media type pushed")
        if kind == "manifest":
            if digest != name:
                self.problems.append(f"manifest {repo}@{name} served as {digest}")
            return True
        return digest

    def listed_tags(self, repo: str) -> set[str]:
        r = self.client.get(f"/v2/{repo}/tags/list", params={"n": 1000})
        if r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN":
            return set()
        assert r.status_code == 200, r.text
        return set(r.json().get("tags") or [])

    def resume(self, track: UploadTrack, blob_present: bool) -> bool:
        """Finish an interrupted chunked upload from the offset the server reports. True when it was
        finished now; False when the final PUT had landed before the crash (the session is gone)."""
        r = self.client.get(track.path)
        if r.status_code == 404:
            if not (track.finishing and blob_present):
                self.problems.append(f"upload {track.path}: acknowledged session lost ({r.text[:200]})")
            return False
        if r.status_code != 204:
            self.problems.append(f"upload {track.path}: status {r.status_code}")
            return False
        last = int(r.headers["range"].split("-")[1])
        size = 0 if last == 0 and 0 in track.boundaries else last + 1
        if size not in track.boundaries:
            self.problems.append(f"upload {track.path}: at {size}, expected one of {sorted(track.boundaries)}")
            return False
        if size < len(track.data):
            rest = track.data[size:]
            headers = {"Content-Range": f"{size}-{len(track.data) - 1}"}
            r = self.client.patch(track.path, content=rest, headers=headers)
            if r.status_code != 202:
                self.problems.append(f"upload {track.path}: resume PATCH {r.status_code} {r.text[:200]}")
                return False
        r = self.client.put(track.path, params={"digest": track.digest})
        if r.status_code != 201:
            self.problems.append(f"upload {track.path}: resume PUT {r.status_code} {r.text[:200]}")
            return False
        return True


def check_after_restart(url: str, workers: list[PushWorker], content: Content, tally: Tally) -> list[str]:
    """Observe every key of every worker's model, settle the models, finish interrupted uploads."""
    with httpx.Client(base_url=url, timeout=60) as client:
        observer = Observer(client, content)
        keys = sorted({k for w in workers for k in w.model.all_keys()})
        with ThreadPoolExecutor(8) as pool:
            observed = dict(zip(keys, pool.map(observer.observe, keys), strict=True))
        problems = observer.problems  # one list: observations, consistency and uploads
        repos = {w.model.repo for w in workers}
        for worker in workers:
            model = worker.model
            listed = observer.listed_tags(model.repo)
            shown = {k[2] for k, v in observed.items() if k[0] == "tag" and k[1] == model.repo and v is not None}
            if listed != shown:
                problems.append(f"{model.repo}: tags/list shows {sorted(listed)}, tags resolve for {sorted(shown)}")
            for p in model.pending:
                if any(observed[k] == v and v not in (None, False) for k, v in p.after.items()):
                    tally.landed_unacked += 1
            mine = {k: observed[k] for k in model.all_keys()}
            tally.keys_checked += len(mine)
            tally.acked_keys_checked += len(set(model.state) - {k for p in model.pending for k in p.after})
            problems += [f"{model.repo}: {p}" for p in model.settle(mine)]
            for track in list(worker.uploads):
                blob = model.key("blob", track.digest)
                if observer.resume(track, observed.get(blob) is True):
                    model.state[blob] = True
                    tally.uploads_resumed += 1
                worker.uploads.remove(track)
        catalog = client.get("/v2/_catalog", params={"n": 10000}).json()["repositories"]
        stray = set(catalog) - repos
        if stray:
            problems.append(f"catalog names repositories nobody pushed to: {sorted(stray)}")
    return problems


def start_fsck(data_dir: Path) -> subprocess.Popen[str]:
    """``registry fsck --data DIR`` started in the background (exit 0: clean, 1: errors)."""
    return subprocess.Popen(
        [BIN / "registry", "fsck", "--data", data_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
