"""A seeded network fuzzer: random, mostly-malformed HTTP requests against a running server, sent over raw
sockets (so that what httpx would refuse to send — negative or huge Content-Length, bad header bytes, request
lines with traversal — is sent as is).

Each case is one connection: the request bytes, then a read of the status line within ``TIMEOUT``. Outcomes:
a status code, ``closed`` (the server dropped a request it could not parse: fine) or ``hang`` (neither within
the timeout: a failure). The generator is deterministic for a seed, so a failure is reproduced from its seed.
"""

from __future__ import annotations

import json
import random
import socket
from dataclasses import dataclass

TIMEOUT = 15.0
DIGEST = "sha256:" + "0" * 64
TRAVERSAL = [
    "../../../../canary/secret",
    "..%2f..%2f..%2fcanary%2fsecret",
    "%2e%2e/%2e%2e/canary/secret",
    "....//....//canary",
    "..\\..\\canary",
    "/etc/passwd",
    "%00",
    "sha256:../../../../canary/secret",
    "sha256:%2e%2e%2f%2e%2e%2fcanary",
]
PATHS = [
    "/v2/",
    "/v2/{name}/manifests/{ref}",
    "/v2/{name}/blobs/{digest}",
    "/v2/{name}/blobs/uploads/",
    "/v2/{name}/blobs/uploads/{ref}",
    "/v2/{name}/tags/list?n={num}&last={ref}",
    "/v2/_catalog?n={num}",
    "/v2/{name}/referrers/{digest}?artifactType={ref}",
    "/token?service={ref}&scope=repository:{name}:pull",
    "/{ref}",
    "/v2/{name}/blobs/uploads/?digest={digest}&mount={digest}&from={name}",
]
METHODS = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "G\x00T", "get", ""]
HEADERS = [
    ("Content-Length", ["-1", "99999999999999999999", "0", "1", "abc", "1, 2", " 5", "+3"]),
    ("Content-Range", ["0-", "-1-5", "5-1", "0-99999999999999999999", "bytes */*", "bytes=0-0/0", "x"]),
    ("Range", ["bytes=-0", "bytes=0-", "bytes=99999999999999999999-", "bytes=5-1", "bytes=0-1,2-3", "items=0-1"]),
    ("Content-Type", ["application/vnd.oci.image.manifest.v1+json", "application/json; charset=\xff", "", "*/*"]),
    ("Accept", ["*/*", "application/vnd.oci.image.index.v1+json;q=x", "\x7f"]),
    ("Authorization", ["Bearer", "Bearer a.b.c", "Basic ###", "Basic " + "A" * 5000, "Digest x"]),
    ("Transfer-Encoding", ["chunked", "gzip", "chunked, chunked"]),
    ("Host", ["", "evil.example", "a" * 3000]),
    ("X-" + "A" * 100, ["x" * 8000]),
]


@dataclass(frozen=True)
class Case:
    label: str
    data: bytes
    # A transfer coding other than plain "chunked": RFC 9112 §6.1 asks for 501 Not Implemented (hypercorn's h11
    # answers it before the application sees the request), so 501 is the intended answer for such a case.
    odd_coding: bool = False


def _name(rng: random.Random) -> str:
    return rng.choice(["fuzz/app", "fuzz/" + "a" * rng.randint(1, 400), "FUZZ/App", "a/b/c/d/e/f", "", "fuzz//app"])


def _ref(rng: random.Random) -> str:
    return rng.choice(["v1", "latest", DIGEST, "sha256:zz", "a" * 200, "-bad", "x;y", *TRAVERSAL])


def _deep_json(depth: int) -> bytes:
    return b'{"schemaVersion":2,"layers":' + b"[" * depth + b"]" * depth + b"}"


def _body(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(["none", "random", "json", "deep", "huge-manifest", "manifest-bad-refs", "nul"])
    if kind == "random":
        return kind, rng.randbytes(rng.randint(1, 4096))
    if kind == "json":
        return kind, json.dumps(
            {"schemaVersion": rng.choice([1, 2, "2", None]), "layers": rng.choice([[], {}, 1])}
        ).encode()
    if kind == "deep":
        return kind, _deep_json(rng.choice([100, 1000, 100_000]))
    if kind == "huge-manifest":  # over the 4 MiB manifest limit
        return kind, b'{"schemaVersion":2,"annotations":{"a":"' + b"x" * (4 * 1024 * 1024 + 10) + b'"}}'
    if kind == "manifest-bad-refs":
        layer = {"mediaType": "x", "digest": rng.choice([DIGEST, "sha256:../x", 5]), "size": rng.choice([-1, 2**70, 1])}
        return kind, json.dumps({"schemaVersion": 2, "config": layer, "layers": [layer] * rng.randint(0, 50)}).encode()
    if kind == "nul":
        return kind, b"\x00" * rng.randint(1, 100)
    return kind, b""


def make_case(rng: random.Random, host: str) -> Case:
    method = rng.choice(METHODS)
    path = rng.choice(PATHS).format(
        name=_name(rng),
        ref=_ref(rng),
        digest=rng.choice([DIGEST, *TRAVERSAL]),
        num=rng.choice(["-1", "0", "99999999999999999999", "x", "1"]),
    )
    if rng.random() < 0.2:
        path = path.replace("/v2/", "/v2/" + rng.choice(TRAVERSAL) + "/", 1)
    if rng.random() < 0.05:
        path = path + "/" + "x" * rng.randint(1000, 20000)
    body_kind, body = _body(rng) if method in ("PUT", "POST", "PATCH") or rng.random() < 0.1 else ("none", b"")
    headers = [("Host", "127.0.0.1")]
    picked = rng.sample(HEADERS, rng.randint(0, 3))
    declared_length = odd_coding = False
    for name, values in picked:
        value = rng.choice(values)
        if name == "Host":
            headers[0] = (name, value)
            continue
        declared_length |= name in ("Content-Length", "Transfer-Encoding")
        odd_coding |= name == "Transfer-Encoding" and value != "chunked"
        headers.append((name, value))
    if not declared_length:
        headers.append(("Content-Length", str(len(body))))
    headers.append(("Connection", "close"))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    label = f"{method} {path[:80]} {[k for k, _ in picked]} body={body_kind}"
    return Case(label, head.encode("latin-1", errors="replace") + body, odd_coding)


def send(host: str, port: int, case: Case, timeout: float = TIMEOUT) -> str:
    """Send one case; the status code as text, ``closed`` or ``hang``."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(case.data)
            sock.shutdown(socket.SHUT_WR)  # a body shorter than declared ends here, as a vanished client's would
        except OSError:
            pass  # the server may answer (and close) before it read everything
        received = b""
        try:
            while b"\r\n" not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            return "hang"
        except OSError:
            return "closed"
    if not received:
        return "closed"
    parts = received.split(b"\r\n", 1)[0].split()
    return parts[1].decode() if len(parts) > 1 and parts[1].isdigit() else f"garbled {received[:40]!r}"
