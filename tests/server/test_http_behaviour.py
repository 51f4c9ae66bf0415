"""HTTP behaviour that clients depend on: connections close when they should, HEAD keeps its
Content-Length, TLS offers only HTTP/1.1 and reloads its certificate, Location honours public_url."""

from __future__ import annotations

import hashlib
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.server.tlsutil import make_ca, make_server_cert
from tests.serverproc import RegistryProcess


def _exchange(host: str, port: int, request: bytes, wait: float) -> tuple[bytes, float | None]:
    """Send ``request``; return what came back and how long until the server closed (None: still open)."""
    with socket.create_connection((host, port)) as sock:
        sock.sendall(request)
        sock.settimeout(wait)
        started, data = time.monotonic(), b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            return data, None
        return data, time.monotonic() - started


def _addr(proc: RegistryProcess) -> tuple[str, int]:
    host, port = proc.host.rsplit(":", 1)
    return host, int(port)


@pytest.mark.parametrize("path", ["/v2/", "/healthz", "/v2/nothing/here/tags/list", "/nope"])
@pytest.mark.parametrize("style", ["http10", "close"])
def test_connections_close_when_asked(shared_registry: RegistryProcess, path: str, style: str) -> None:
    if style == "http10":
        request = f"GET {path} HTTP/1.0\r\n\r\n".encode()
    else:
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    data, closed_after = _exchange(*_addr(shared_registry), request, wait=3)
    assert data.startswith(b"HTTP/1.1 "), data[:100]
    assert closed_after is not None and closed_after < 1, f"connection left open for {path} ({style})"


def test_idle_keepalive_is_closed(tmp_path: Path) -> None:
    env = {"REGISTRY__SERVER__KEEP_ALIVE_TIMEOUT": "1"}
    with RegistryProcess(tmp_path / "data", env=env) as proc:
        for path in ("/v2/", "/healthz"):
            data, closed_after = _exchange(*_addr(proc), f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), wait=5)
            assert b" 200 " in data.split(b"\r\n")[0]
            assert closed_after is not None and 0.5 < closed_after < 3, (path, closed_after)


def test_head_keeps_content_length(shared_registry: RegistryProcess) -> None:
    data = b"head-check" * 100
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=shared_registry.url) as client:
        assert client.post("/v2/head/app/blobs/uploads/", params={"digest": digest}, content=data).status_code == 201
        head = client.head(f"/v2/head/app/blobs/{digest}")
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.content == b""
        missing = client.head(f"/v2/head/app/blobs/sha256:{'0' * 64}")
        assert missing.status_code == 404 and missing.content == b""


def test_public_url_in_location(tmp_path: Path) -> None:
    with RegistryProcess(tmp_path / "data", "--public-url", "https://registry.example.com") as proc:
        r = httpx.post(f"{proc.url}/v2/pub/app/blobs/uploads/")
        assert r.status_code == 202
        assert r.headers["location"].startswith("https://registry.example.com/v2/pub/app/blobs/uploads/")


def test_forwarded_headers_only_from_trusted_proxies(tmp_path: Path) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "edge.example.com"}
    with RegistryProcess(tmp_path / "untrusted") as proc:
        r = httpx.post(f"{proc.url}/v2/fw/app/blobs/uploads/", headers=headers)
        assert r.headers["location"].startswith("/v2/fw/app/blobs/uploads/")
    env = {"REGISTRY__SERVER__TRUSTED_PROXIES": "127.0.0.0/8"}
    with RegistryProcess(tmp_path / "trusted", env=env) as proc:
        r = httpx.post(f"{proc.url}/v2/fw/app/blobs/uploads/", headers=headers)
        assert r.headers["location"].startswith("https://edge.example.com/v2/fw/app/blobs/uploads/")


def _peer_cert_serial(port: int, ca: Path) -> tuple[str | None, int]:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        cert = tls.getpeercert()
        assert cert is not None
        return tls.selected_alpn_protocol(), int(str(cert["serialNumber"]), 16)


def test_tls_http11_only_and_certificate_reload(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "pki")
    cert, key = make_server_cert(tmp_path / "pki", ca)
    live_cert, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    with RegistryProcess(tmp_path / "data", "--tls-cert", str(live_cert), "--tls-key", str(live_key)) as proc:
        assert proc.url.startswith("https://")
        port = int(proc.host.rsplit(":", 1)[1])
        alpn, first_serial = _peer_cert_serial(port, ca[0])
        assert alpn == "http/1.1"
        r = httpx.get(f"{proc.url}/v2/", verify=ssl.create_default_context(cafile=str(ca[0])))
        assert r.status_code == 200 and r.headers["docker-distribution-api-version"] == "registry/2.0"
        new_cert, new_key = make_server_cert(tmp_path / "pki", ca, name="rotated")
        shutil.copy(new_key, live_key)
        shutil.copy(new_cert, live_cert)
        deadline = time.monotonic() + 20
        serial = first_serial
        while serial == first_serial and time.monotonic() < deadline:
            time.sleep(0.5)
            serial = _peer_cert_serial(port, ca[0])[1]
        assert serial != first_serial, "certificate was not reloaded"


@pytest.mark.e2e
def test_skopeo_trusts_registry_ca(tmp_path: Path) -> None:
    """A real client over TLS: skopeo with a cert dir holding only our test CA."""
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed: the test command installs it")
    ca = make_ca(tmp_path / "pki")
    cert, key = make_server_cert(tmp_path / "pki", ca)
    certs_dir = tmp_path / "certs.d"
    certs_dir.mkdir()
    shutil.copy(ca[0], certs_dir / "ca.crt")
    with RegistryProcess(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key)) as proc:
        layout = tmp_path / "layout"
        from tests.imagebuild import build_image

        build_image(layout, text="hello over tls\n")
        ref = f"docker://{proc.host}/tls/app:v1"
        copy = subprocess.run(
            ["skopeo", "copy", "--dest-cert-dir", str(certs_dir), f"oci:{layout}", ref],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert copy.returncode == 0, copy.stderr
        untrusted = subprocess.run(["skopeo", "inspect", ref], capture_output=True, text=True, timeout=60)
        assert untrusted.returncode != 0 and "certificate" in untrusted.stderr
        trusted = subprocess.run(
            ["skopeo", "inspect", "--cert-dir", str(certs_dir), ref], capture_output=True, text=True, timeout=60
        )
        assert trusted.returncode == 0, trusted.stderr


def test_client_disconnect_mid_body_loses_nothing(registry: RegistryProcess) -> None:
    host, port = _addr(registry)
    with httpx.Client(base_url=registry.url) as client:
        location = client.post("/v2/cut/app/blobs/uploads/").headers["location"]
        assert client.patch(location, content=b"x" * 100).status_code == 202
        for request in (
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode() + b"y" * 5000,
            f"POST /v2/cut/app/blobs/uploads/?digest=sha256:{'1' * 64} HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 100000\r\n\r\n".encode()
            + b"z" * 5000,
        ):
            with socket.create_connection((host, port)) as sock:
                sock.sendall(request)
            time.sleep(0.3)
        status = client.get(location)
        assert status.status_code == 204 and status.headers["range"] == "0-99"
        assert client.head(f"/v2/cut/app/blobs/sha256:{'1' * 64}").status_code == 404
        data = b"x" * 100 + b"tail"
        done = client.put(location, params={"digest": "sha256:" + hashlib.sha256(data).hexdigest()}, content=b"tail")
        assert done.status_code == 201, done.text
    assert "unhandled error" not in registry.log_text()
    assert list((registry.data / "uploads").iterdir()) == []
