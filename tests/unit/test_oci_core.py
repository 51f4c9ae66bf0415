"""Unit and property tests for the pure protocol core (registry.oci)."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.oci import errors as e
from registry.oci import mediatypes as mt
from registry.oci.digest import Digest
from registry.oci.manifest import parse_manifest
from registry.oci.names import parse_reference, validate_name, validate_tag
from registry.oci.wire import next_link, parse_basic, parse_range, parse_upload_range

SHA = "sha256:" + "a" * 64


def test_digest_parse_and_str() -> None:
    d = Digest.parse(SHA)
    assert (d.algorithm, d.encoded, str(d)) == ("sha256", "a" * 64, SHA)
    assert str(Digest.parse("sha512:" + "b" * 128)).startswith("sha512:")


@pytest.mark.parametrize(
    "value",
    [
        "sha256:" + "A" * 64,
        "sha256:abc",
        "sha256:" + "a" * 63,
        "md5:" + "a" * 32,
        "sha256",
        "",
        ":" + "a" * 64,
        "sha256:" + "a" * 64 + "\n",
        "sha512:" + "a" * 64,
    ],
)
def test_digest_invalid(value: str) -> None:
    with pytest.raises(e.RegistryError) as info:
        Digest.parse(value)
    assert info.value.code is e.DIGEST_INVALID and info.value.status == 400


@given(st.binary(max_size=2048), st.sampled_from(["sha256", "sha512"]))
def test_digest_of_matches_hashlib(data: bytes, algorithm: str) -> None:
    d = Digest.of(data, algorithm)
    assert d.encoded == hashlib.new(algorithm, data).hexdigest()
    assert Digest.parse(str(d)) == d


@pytest.mark.parametrize("name", ["a", "ns/app", "a/b/c", "foo_bar", "foo__bar", "foo-bar", "foo---bar", "a.b", "0x/1"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "A", "ns/App", "-a", "a-", "a//b", "a/", "/a", "a..b", "a/../b", "a b", "a%2fb", "x" * 256, "a___b"]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(e.RegistryError) as info:
        validate_name(name)
    assert info.value.code is e.NAME_INVALID


@given(st.from_regex(r"\A[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z"))
def test_valid_tags_property(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".a", "-a", "a" * 129, "a/b", "a:b", "a+b"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(e.RegistryError) as info:
        validate_tag(tag)
    assert info.value.code is e.TAG_INVALID


def test_reference_is_digest_or_tag() -> None:
    assert parse_reference(SHA) == Digest.parse(SHA)
    assert parse_reference("v1.0") == "v1.0"
    with pytest.raises(e.RegistryError):
        parse_reference("sha256:nothex")


@pytest.mark.parametrize(
    ("header", "length", "expected"),
    [
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=90-", 100, (90, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=50-1000", 100, (50, 99)),
        ("bytes=-1000", 100, (0, 99)),
    ],
)
def test_parse_range(header: str, length: int, expected: tuple[int, int]) -> None:
    r = parse_range(header, length)
    assert r is not None and (r.start, r.end) == expected
    assert r.content_range() == f"bytes {expected[0]}-{expected[1]}/{length}"


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=200-300", "bytes=-0", "bytes=5-1"])
def test_parse_range_unsatisfiable(header: str) -> None:
    with pytest.raises(e.RegistryError) as info:
        parse_range(header, 100)
    assert info.value.status == 416 and info.value.headers["Content-Range"] == "bytes */100"


@pytest.mark.parametrize("header", [None, "", "items=0-1", "bytes=0-1,5-6", "bytes=-"])
def test_parse_range_ignored(header: str | None) -> None:
    assert parse_range(header, 100) is None


@given(st.integers(0, 10**12), st.integers(0, 10**12))
def test_parse_range_property(length: int, start: int) -> None:
    try:
        r = parse_range(f"bytes={start}-", length)
    except e.RegistryError as err:
        assert start >= length and err.status == 416
    else:
        assert r is not None and 0 <= r.start <= r.end < length and r.size == length - start


@pytest.mark.parametrize(
    ("header", "expected"),
    [("0-1023", (0, 1023)), ("bytes=10-20", (10, 20)), ("bytes 0-9/100", (0, 9)), ("5-4", None), ("x", None)],
)
def test_parse_upload_range(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_upload_range(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic dXNlcjpwYXNz", ("user", "pass")),  # user:pass
        ("basic  dXNlcjpwYTpzcw== ", ("user", "pa:ss")),  # the password may hold ":"
        ("Basic dXNlcjo=", ("user", "")),  # empty password
        ("Basic dXNlcg==", None),  # no ":"
        ("Basic not*base64", None),
        ("Basic //79", None),  # not UTF-8
        ("Basic", None),
    ],
)
def test_parse_basic(header: str, expected: tuple[str, str] | None) -> None:
    assert parse_basic(header) == expected


def test_next_link_escapes() -> None:
    assert next_link("/v2/a/tags/list", 2, "b&c") == '</v2/a/tags/list?n=2&last=b%26c>; rel="next"'


def test_accept_headers_are_merged() -> None:
    assert mt.parse_accept([f"{mt.OCI_MANIFEST}, {mt.OCI_INDEX};q=0.9", mt.DOCKER_MANIFEST]) == [
        mt.OCI_MANIFEST,
        mt.OCI_INDEX,
        mt.DOCKER_MANIFEST,
    ]


def _desc(media_type: str, data: bytes = b"x", **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data), **extra}


def test_parse_image_manifest() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": _desc(mt.OCI_CONFIG, b"{}"),
        "layers": [_desc("application/vnd.oci.image.layer.v1.tar+gzip", b"l1")],
        "subject": _desc(mt.OCI_MANIFEST, b"subject"),
        "annotations": {"k": "v"},
    }
    parsed = parse_manifest(json.dumps(doc).encode(), mt.OCI_MANIFEST)
    assert parsed.media_type == mt.OCI_MANIFEST
    assert [str(b.digest) for b in parsed.blobs] == [str(Digest.of(b"{}")), str(Digest.of(b"l1"))]
    assert parsed.subject is not None and parsed.subject.digest == Digest.of(b"subject")
    assert parsed.artifact_type == mt.OCI_CONFIG  # falls back to config.mediaType
    assert parsed.annotations == {"k": "v"}


def test_parse_artifact_and_external_layer() -> None:
    doc = {
        "schemaVersion": 2,
        "artifactType": "application/vnd.example+type",
        "config": _desc(mt.OCI_EMPTY, b"{}"),
        "layers": [_desc("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", b"n", urls=["https://x/y"])],
    }
    parsed = parse_manifest(json.dumps(doc).encode(), mt.OCI_MANIFEST)
    assert parsed.artifact_type == "application/vnd.example+type"
    assert parsed.blobs[1].is_external and not parsed.blobs[0].is_external


def test_parse_index() -> None:
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [_desc(mt.OCI_MANIFEST, b"m")]}
    parsed = parse_manifest(json.dumps(doc).encode(), None)
    assert parsed.is_index and parsed.children[0].digest == Digest.of(b"m") and parsed.blobs == ()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", mt.OCI_MANIFEST),
        (b"[]", mt.OCI_MANIFEST),
        (b'{"schemaVersion": 1}', mt.OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}).encode(), mt.OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "config": {"mediaType": "x"}, "layers": []}).encode(), mt.OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "manifests": [{}]}).encode(), mt.OCI_INDEX),
        (json.dumps({"schemaVersion": 2, "manifests": []}).encode(), "application/vnd.unknown+json"),
        (json.dumps({"schemaVersion": 1}).encode(), mt.DOCKER_SCHEMA1_SIGNED),
        (b"[" * 100000 + b"]" * 100000, mt.OCI_MANIFEST),
    ],
)
def test_parse_manifest_invalid(body: bytes, content_type: str) -> None:
    with pytest.raises(e.RegistryError) as info:
        parse_manifest(body, content_type)
    assert info.value.code is e.MANIFEST_INVALID


def test_envelope_shape() -> None:
    body = json.loads(e.envelope(e.RegistryError(e.BLOB_UNKNOWN, detail={"digest": SHA})))
    assert body == {
        "errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": {"digest": SHA}}]
    }


def test_scopes() -> None:
    from registry.oci.scope import allowed_actions, challenge, parse_scope, parse_scopes

    s = parse_scope("repository:host.example:5000/ns/app:pull,push")
    assert s is not None and s.name == "host.example:5000/ns/app" and s.actions == ("pull", "push")
    assert parse_scope("registry:catalog:*") is not None
    assert parse_scope("repository(plugin):ns/app:pull") == parse_scope("repository:ns/app:pull")
    for bad in ("", "repository", "repository:ns/app", ":ns:pull", "repository::pull", "Repo:x:pull"):
        assert parse_scope(bad) is None, bad
    merged = parse_scopes(["repository:a/b:pull repository:c/d:pull", "repository:a/b:push", "junk"])
    assert [str(m) for m in merged] == ["repository:a/b:pull,push", "repository:c/d:pull"]
    access = [{"type": "repository", "name": "a/b", "actions": ["pull"]}, {"type": "x"}, "bad"]
    assert allowed_actions(access, "repository", "a/b") == {"pull"}
    assert allowed_actions("nope", "repository", "a/b") == set()
    assert challenge("https://r/token", "r", merged[:1], "insufficient_scope") == (
        'Bearer realm="https://r/token",service="r",scope="repository:a/b:pull,push",error="insufficient_scope"'
    )
