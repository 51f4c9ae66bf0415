"""``registry serve --workers N``: worker processes sharing one listening socket, behind one supervisor.

Every request here goes over a connection of its own, so requests spread over the workers; which worker answered
is read from the kernel (the server side of the connection is a socket in exactly one worker's fd table, found
through ``/proc/net/tcp`` and ``/proc/<pid>/fd``), so a test can insist that both workers took part.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import urljoin

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import CHEAP_ARGON2, admin
from tests.edge.ocipush import sha256
from tests.imagebuild import OCI_MANIFEST, BuiltImage, build_image
from tests.serverproc import BIN, RegistryProcess
from tests.slowupload import SlowUpload

T = TypeVar("T")
_STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")
_LISTENING = re.compile(r"registry listening on (\S+) \(data: (.+)\)")


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has exited: nobody may be left to reap it once its parent is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _server_side_inode(server_port: int, client_port: int) -> int | None:
    """The socket inode of the accepted end of the loopback connection from ``client_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            ports = int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)
            if ports == (server_port, client_port) and inode:
                return inode
    return None


def _socket_inodes(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, ProcessLookupError):
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[len("socket:[") : -1]))
    return found


class Pool:
    """A ``registry serve --workers N`` process, and which of its workers answers each connection."""

    def __init__(self, proc: RegistryProcess, count: int, *, serving: bool = True) -> None:
        self.proc = proc
        self.count = count
        self.serving = serving

    def __enter__(self) -> Self:
        """Start; wait for the workers' log lines, and unless ``serving=False`` until each has answered."""
        self.proc.start()
        wait_for(lambda: len(self.workers()) >= self.count, 30, f"{self.count} 'worker K started' lines")
        if self.serving:
            self.wait_serving()
        return self

    def wait_serving(self, tries: int = 60) -> None:
        """Until every worker has answered a connection (a worker starts a second or two after its log line)."""
        answered: set[int] = set()
        for _ in range(tries):
            response, worker = self.call("GET", "/v2/")
            assert response.status_code in (200, 401), response.text
            answered.add(worker)
            if len(answered) == self.count:
                return
        raise AssertionError(f"{tries} new connections reached only workers {sorted(answered)}")

    def __exit__(self, *exc: object) -> None:
        self.proc.stop(30)
        # Never leave a worker behind, even when the implementation would (the assertions say so elsewhere).
        for pid in self.every_pid():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def port(self) -> int:
        return int(self.proc.url.rsplit(":", 1)[1])

    def workers(self) -> dict[int, int]:
        """Worker index → pid of its latest start, from the supervisor's log."""
        return {int(index): int(pid) for index, pid in _STARTED.findall(self.proc.log_text())}

    def every_pid(self) -> set[int]:
        return {int(pid) for _, pid in _STARTED.findall(self.proc.log_text())}

    def worker_of(self, response: httpx.Response) -> int:
        """The index of the worker holding the server end of ``response``'s connection (which must be open)."""
        sock = response.extensions["network_stream"].get_extra_info("socket")
        client_port = sock.getsockname()[1]
        deadline = time.monotonic() + 2
        while True:
            inode = _server_side_inode(self.port, client_port)
            if inode is not None:
                for index, pid in self.workers().items():
                    if inode in _socket_inodes(pid):
                        return index
            if time.monotonic() > deadline:
                raise AssertionError(f"no worker of {self.workers()} holds the connection from port {client_port}")
            time.sleep(0.02)

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, int]:
        """One request on a new connection: the (read) response and the index of the worker that answered."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            response = client.request(method, path, **kwargs)
            return response, self.worker_of(response)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    """One server for the tests that leave its processes alone (each starts in a few seconds)."""
    with Pool(RegistryProcess(tmp_path_factory.mktemp("workers") / "data", "--workers", "2"), 2) as running:
        yield running


@pytest.fixture
def fresh_pool(tmp_path: Path) -> Iterator[Pool]:
    """A server of its own, for a test that kills or stops processes."""
    with Pool(RegistryProcess(tmp_path / "data", "--workers", "2"), 2) as running:
        yield running


def error_codes(response: httpx.Response) -> list[str]:
    return [str(err["code"]) for err in response.json()["errors"]]


def push_image(pool: Pool, repo: str, image: BuiltImage, tag: str) -> int:
    """Push blobs and manifest, each on a new connection; the index of the worker that took the manifest."""
    for blob in [image.config, *image.layers]:
        response, _ = pool.call("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(blob)}, content=blob)
        assert response.status_code == 201, response.text
    response, worker = pool.call(
        "PUT", f"/v2/{repo}/manifests/{tag}", content=image.manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201, response.text
    return worker


def skopeo(*args: str) -> None:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# -- clients ----------------------------------------------------------------------------------------------


def test_skopeo_copy_in_and_out_through_two_workers(pool: Pool, tmp_path: Path) -> None:
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed: the test command installs it")
    log = pool.proc.log_text()
    listening = _LISTENING.findall(log)
    assert listening == [(pool.url, str(pool.proc.data.resolve()))], log  # one line, by the supervisor
    workers = pool.workers()
    assert sorted(workers) == [0, 1]
    assert len({*workers.values(), pool.proc.pid}) == 3, workers  # two processes apart from the supervisor
    image = build_image(tmp_path / "src", text="through two workers\n", layer_count=3, tag="v1")
    ref = f"docker://{pool.proc.host}/workers/skopeo:v1"
    skopeo("copy", "--dest-tls-verify=false", image.ref, ref)
    out = tmp_path / "out"
    skopeo("copy", "--src-tls-verify=false", ref, f"oci:{out}:v1")
    index = json.loads((out / "index.json").read_text())
    assert [entry["digest"] for entry in index["manifests"]] == [image.manifest_digest]
    for digest, data in zip([image.config_digest, *image.layer_digests], [image.config, *image.layers], strict=True):
        assert (out / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes() == data
    # Either worker serves what was pushed (skopeo's connections may all have landed on one).
    answered: set[int] = set()
    for _ in range(40):
        response, worker = pool.call("GET", "/v2/workers/skopeo/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200 and response.headers["docker-content-digest"] == image.manifest_digest
        answered.add(worker)
        if answered == {0, 1}:
            break
    assert answered == {0, 1}, "40 new connections never reached both workers"


def test_chunked_upload_spread_over_workers(pool: Pool) -> None:
    repo = "workers/chunked"
    data = os.urandom(300_000)
    parts = [data[:100_000], data[100_000:250_000], data[250_000:]]

    def upload(final_digest: str) -> tuple[httpx.Response, set[int]]:
        """POST, PATCH, PATCH, PUT (with the last part), each on a new connection."""
        response, worker = pool.call("POST", f"/v2/{repo}/blobs/uploads/")
        assert response.status_code == 202, response.text
        workers = {worker}
        location = urljoin(pool.url, response.headers["location"])
        offset = 0
        for part in parts[:2]:
            content_range = f"{offset}-{offset + len(part) - 1}"
            response, worker = pool.call("PATCH", location, content=part, headers={"Content-Range": content_range})
            assert response.status_code == 202, response.text
            assert response.headers["range"] == f"0-{offset + len(part) - 1}"
            workers.add(worker)
            offset += len(part)
            location = urljoin(pool.url, response.headers["location"])
        response, worker = pool.call("PUT", location, params={"digest": final_digest}, content=parts[2])
        workers.add(worker)
        return response, workers

    spanned = False
    for _ in range(6):  # each session spans both workers with probability 7/8 when connections spread evenly
        response, workers = upload(sha256(data))
        assert response.status_code == 201, response.text
        assert response.headers["docker-content-digest"] == sha256(data)
        spanned = spanned or workers == {0, 1}
        if spanned:
            break
    assert spanned, "no upload session had requests answered by both workers"
    served: set[int] = set()
    for _ in range(40):  # each worker gives back the exact bytes
        got, worker = pool.call("GET", f"/v2/{repo}/blobs/{sha256(data)}")
        assert got.status_code == 200 and got.content == data
        served.add(worker)
        if served == {0, 1}:
            break
    assert served == {0, 1}, "40 new connections never reached both workers"
    wrong = sha256(b"not these bytes")
    for _ in range(2):
        response, _ = upload(wrong)
        assert response.status_code == 400, response.text
        assert error_codes(response) == ["DIGEST_INVALID"]
        missing, _ = pool.call("HEAD", f"/v2/{repo}/blobs/{wrong}")
        assert missing.status_code == 404


# -- process supervision ----------------------------------------------------------------------------------


def test_a_killed_worker_is_restarted_and_the_server_keeps_answering(fresh_pool: Pool) -> None:
    pool = fresh_pool
    before = pool.workers()
    victim = before[1]
    os.kill(victim, signal.SIGKILL)
    # The server goes on answering while worker 1 is down.
    for _ in range(10):
        response, _ = pool.call("GET", "/v2/")
        assert response.status_code == 200
    exited = re.compile(rf"worker 1 \(pid {victim}\) exited with code \S+; restarting")
    wait_for(lambda: exited.search(pool.proc.log_text()), 10, "the supervisor to notice worker 1 exited")
    replacement = wait_for(lambda: pool.workers()[1] != victim and pool.workers()[1], 10, "worker 1 restarted")
    assert not alive(victim) and alive(replacement) and pool.workers()[0] == before[0]
    for _ in range(50):
        response, _ = pool.call("GET", "/v2/workers/restart/tags/list")
        assert response.status_code == 404 and error_codes(response) == ["NAME_UNKNOWN"], response.text
    pool.wait_serving()  # the replacement takes connections too
    assert pool.workers()[1] == replacement
    assert pool.proc.proc is not None and pool.proc.proc.poll() is None


CHUNK = b"x" * 64 * 1024
CHUNKS = 40


def test_sigterm_drains_an_upload_then_stops_every_process(tmp_path: Path) -> None:
    env = {"REGISTRY__SERVER__GRACEFUL_TIMEOUT": "60"}
    with Pool(RegistryProcess(tmp_path / "data", "--workers", "2", env=env), 2) as pool:
        pids = set(pool.workers().values())
        upload = SlowUpload(pool.url, "workers/drain", CHUNK, CHUNKS).start()
        assert upload.halfway.wait(30)
        assert pool.proc.proc is not None
        pool.proc.proc.send_signal(signal.SIGTERM)

        def refused() -> bool:
            try:
                httpx.get(f"{pool.url}/v2/", timeout=2, headers={"Connection": "close"})
            except httpx.TransportError:
                return True
            return False

        wait_for(refused, 1.5, "new connections to be refused while the upload drains")
        assert upload.thread.is_alive(), "the upload ended before the listening socket closed: nothing was drained"
        upload.thread.join(60)
        assert upload.result == {"status": 201}
        assert pool.proc.proc.wait(60) == 0
        wait_for(lambda: not any(alive(pid) for pid in pids), 5, f"workers {pids} to exit")
        assert "restarting" not in pool.proc.log_text()  # workers that drain on SIGTERM are not restarted
    with RegistryProcess(tmp_path / "data") as again:  # the drained upload was committed
        assert httpx.head(f"{again.url}/v2/workers/drain/blobs/{upload.digest}", timeout=10).status_code == 200


def test_workers_exit_when_the_supervisor_is_killed(fresh_pool: Pool) -> None:
    pool = fresh_pool
    pids = set(pool.workers().values())
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    pool.proc.kill()
    wait_for(lambda: not any(alive(pid) for pid in pids), 10, f"orphaned workers {pids} to exit")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{pool.url}/v2/", timeout=5)


def starting(data: Path) -> Pool:
    """A ``--workers 2`` server whose ``start()`` returns at the log line ``worker 1 started``: the workers are
    still importing, the supervisor has not said ``registry listening`` yet."""
    proc = RegistryProcess(data, "--workers", "2")
    proc.listening = re.compile(r"worker 1 started \(pid (\d+)\)")  # ChildServer's "up" line; the url is unused
    return Pool(proc, 2, serving=False)


def test_sigterm_while_workers_start_is_a_clean_stop(tmp_path: Path) -> None:
    """A stop during startup (``systemctl stop`` right after start) gives exit code 0 and leaves no worker."""
    with starting(tmp_path / "data") as pool:
        pids = set(pool.workers().values())
        assert pool.proc.proc is not None
        pool.proc.proc.send_signal(signal.SIGTERM)
        code = pool.proc.proc.wait(30)
        wait_for(lambda: not any(alive(pid) for pid in pids), 5, f"workers {pids} to exit")
        assert code == 0, pool.proc.log_text()


def test_workers_exit_when_the_supervisor_is_killed_while_they_start(tmp_path: Path) -> None:
    with starting(tmp_path / "data") as pool:
        pids = set(pool.workers().values())
        pool.proc.kill()
        wait_for(lambda: not any(alive(pid) for pid in pids), 10, f"orphaned workers {pids} to exit")


# -- shared state -----------------------------------------------------------------------------------------


def samples(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_metrics_sum_requests_over_workers(pool: Pool) -> None:
    route = {"method": "GET", "route": "/v2/{name}/tags/list", "status": "404"}  # only this test asks for it here

    def scrape() -> tuple[float, int]:
        response, worker = pool.call("GET", "/metrics")
        assert response.status_code == 200, response.text
        return samples(response.text, "registry_http_requests_total", **route), worker

    before, _ = scrape()
    requests = 40
    answered: set[int] = set()
    for _ in range(requests):
        response, worker = pool.call("GET", "/v2/workers/metrics/tags/list")
        assert response.status_code == 404
        answered.add(worker)
    assert answered == {0, 1}, "40 new connections never reached both workers"
    scraped_by: set[int] = set()
    for _ in range(20):
        counted, worker = scrape()
        assert counted - before == requests, f"worker {worker} counted {counted - before} of {requests} requests"
        scraped_by.add(worker)
        if scraped_by == {0, 1}:
            break
    assert scraped_by == {0, 1}, "20 scrapes never reached both workers"


def test_event_feed_long_poll_wakes_on_a_push_in_another_worker(pool: Pool, tmp_path: Path) -> None:
    crossed = 0
    for round_ in range(8):
        head, _ = pool.call("GET", "/api/v1/events", params={"after": "latest"})
        assert head.status_code == 200, head.text
        cursor = head.json()["cursor"]
        image = build_image(tmp_path / f"img{round_}", text=f"feed round {round_}\n", layer_count=1, tag="v1")
        answer: dict[str, Any] = {}

        def poll(cursor: str = cursor, answer: dict[str, Any] = answer) -> None:
            try:
                response, worker = pool.call("GET", "/api/v1/events", params={"after": cursor, "wait": 15})
                answer.update(at=time.monotonic(), response=response, worker=worker)
            except Exception as exc:  # reported by the assertion below
                answer["error"] = repr(exc)

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.5)  # the long poll is waiting in its worker
        pushed_to = push_image(pool, f"workers/feed{round_}", image, "v1")
        pushed_at = time.monotonic()
        poller.join(20)
        assert "error" not in answer and "response" in answer, answer
        response: httpx.Response = answer["response"]
        assert response.status_code == 200, response.text
        events = response.json()["events"]
        assert events and events[0]["type"] == "manifest.pushed", events
        assert events[0]["digest"] == image.manifest_digest
        took = answer["at"] - pushed_at
        assert took < 2.0, f"round {round_}: the long poll in worker {answer['worker']} answered {took:.2f}s late"
        if answer["worker"] != pushed_to:
            crossed += 1
            if crossed >= 2:
                break
    assert crossed >= 1, "the push never landed in another worker than the long poll in 8 rounds"


def test_token_and_basic_auth_work_on_every_worker(tmp_path: Path) -> None:
    proc = RegistryProcess(tmp_path / "data", "--workers", "2", "--auth", "token", env=CHEAP_ARGON2)
    with Pool(proc, 2) as pool:
        assert proc.log_text().count("admin credential written") == 1
        doc = json.loads((proc.data / "admin-credential.json").read_text())
        basic = (doc["username"], doc["password"])
        admin(proc, "namespace", "create", "workers")
        anonymous, _ = pool.call("GET", "/v2/")
        assert anonymous.status_code == 401
        scope = {"service": "registry", "scope": "repository:workers/tok:pull,push"}
        tokens: dict[int, str] = {}  # issuing worker → token
        for _ in range(40):
            response, worker = pool.call("GET", "/token", params=scope, auth=basic)
            assert response.status_code == 200, response.text
            tokens.setdefault(worker, response.json()["token"])
            if len(tokens) == 2:
                break
        assert sorted(tokens) == [0, 1], "40 token requests never reached both workers"
        for issuer, token in tokens.items():
            bearer = {"Authorization": f"Bearer {token}"}
            verified: set[int] = set()
            for _ in range(40):
                response, worker = pool.call("GET", "/v2/", headers=bearer)
                assert response.status_code == 200, f"token of worker {issuer} on worker {worker}: {response.text}"
                verified.add(worker)
                if verified == {0, 1}:
                    break
            assert verified == {0, 1}
        bearer = {"Authorization": f"Bearer {tokens[0]}"}
        blob = b"pushed with a token from worker 0"
        response, _ = pool.call(
            "POST", "/v2/workers/tok/blobs/uploads/", params={"digest": sha256(blob)}, content=blob, headers=bearer
        )
        assert response.status_code == 201, response.text
        for token in tokens.values():
            for _ in range(5):
                got, _ = pool.call(
                    "GET", f"/v2/workers/tok/blobs/{sha256(blob)}", headers={"Authorization": f"Bearer {token}"}
                )
                assert got.status_code == 200 and got.content == blob
        with_basic: set[int] = set()
        for _ in range(40):
            response, worker = pool.call("GET", f"/v2/workers/tok/blobs/{sha256(blob)}", auth=basic)
            assert response.status_code == 200, response.text
            with_basic.add(worker)
            if with_basic == {0, 1}:
                break
        assert with_basic == {0, 1}
        wrong, _ = pool.call("GET", "/token", params=scope, auth=(basic[0], "not-the-password"))
        assert wrong.status_code == 401


# -- configuration ----------------------------------------------------------------------------------------


def run_together(runs: dict[str, tuple[list[str], dict[str, str]]]) -> dict[str, tuple[int, str]]:
    """Run commands at the same time (each spends a second importing); name → (exit code, stdout + stderr)."""
    started = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for name, (cmd, env) in runs.items()
    }
    results: dict[str, tuple[int, str]] = {}
    try:
        for name, proc in started.items():
            output, _ = proc.communicate(timeout=30)
            results[name] = (proc.returncode, output)
    finally:
        for proc in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def test_workers_must_be_between_1_and_64(tmp_path: Path) -> None:
    registry = str(BIN / "registry")
    runs: dict[str, tuple[list[str], dict[str, str]]] = {}
    for source, count in (("flag", 0), ("flag", 65), ("env", 65), ("toml", 0)):
        cmd = [registry, "serve", "--listen", "127.0.0.1:0", "--auth", "none", "--data", str(tmp_path / source)]
        env = {**os.environ}
        if source == "flag":
            cmd += ["--workers", str(count)]
        elif source == "env":
            env["REGISTRY__SERVER__WORKERS"] = str(count)
        else:
            (tmp_path / "serve.toml").write_text(f"[server]\nworkers = {count}\n")
            cmd += ["--config", str(tmp_path / "serve.toml")]
        runs[f"serve, {source} {count}"] = (cmd, env)
    for count in (1, 64, 65, 0):
        path = tmp_path / f"workers-{count}.toml"
        path.write_text(f"[server]\nworkers = {count}\n")
        runs[f"config check, {count}"] = ([registry, "config", "check", str(path)], {**os.environ})
    for name, (code, output) in run_together(runs).items():
        if name.startswith("serve"):
            assert code != 0, (name, output)
            assert "workers" in output and "64" in output, (name, output)  # says what is wrong and what is allowed
            assert "Traceback" not in output and "listening" not in output, (name, output)
        else:
            assert (code == 0) == name.endswith((" 1", " 64")), (name, output)
