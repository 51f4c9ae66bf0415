"""Property tests for the pure protocol core (``registry.oci``): whatever a client sends, the parsers either
return a well-formed value or raise ``RegistryError`` with the documented code — never anything else — and
what they accept round-trips. (tests/unit/test_oci_core.py holds the example-based tests.)"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.oci import errors as e
from registry.oci import mediatypes as mt
from registry.oci.digest import Digest
from registry.oci.manifest import parse_manifest
from registry.oci.names import parse_reference, validate_name, validate_tag
from registry.oci.scope import Scope, allowed_actions, challenge, parse_challenge, parse_scope, parse_scopes
from registry.oci.wire import parse_range, parse_upload_range
from tests.fuzz.conftest import tried

# Bounded for CI; FUZZ_EXAMPLES=5000 for a long run.
EXAMPLES = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")), deadline=None)
ALNUM = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
SEPARATOR = st.sampled_from([".", "_", "__", "-", "--"])
# A path component: alnum runs joined by separators (built, not regex-generated: much faster).
COMPONENT = st.builds(
    lambda first, rest: first + "".join(sep + run for sep, run in rest),
    ALNUM,
    st.lists(st.tuples(SEPARATOR, ALNUM), max_size=2),
)
NAMES = st.lists(COMPONENT, min_size=1, max_size=4).map("/".join).filter(lambda n: len(n) <= 255)
HOSTILE = st.sampled_from(["..", "../", "/", "%2e%2e", "\x00", "\\", "~", " ", "\n", ":", "@", "%2f"])
TEXT = st.one_of(st.text(max_size=300), st.lists(st.one_of(COMPONENT, HOSTILE), max_size=8).map("".join))


@EXAMPLES
@given(NAMES)
def test_grammar_names_are_accepted(name: str) -> None:
    tried("core: names")
    assert validate_name(name) == name


@EXAMPLES
@given(TEXT)
def test_any_name_is_valid_or_name_invalid_and_never_escapes(name: str) -> None:
    tried("core: names")
    try:
        validate_name(name)
    except e.RegistryError as err:
        assert err.code is e.NAME_INVALID
        return
    parts = name.split("/")
    assert all(p and p not in (".", "..") for p in parts), "an accepted name can never leave its directory"
    assert name == name.lower() and "\\" not in name and "\x00" not in name


@EXAMPLES
@given(TEXT)
def test_any_reference_is_a_digest_a_tag_or_an_oci_error(reference: str) -> None:
    tried("core: references")
    try:
        parsed = parse_reference(reference)
    except e.RegistryError as err:
        assert err.code in (e.TAG_INVALID, e.DIGEST_INVALID)
        return
    if isinstance(parsed, Digest):
        assert str(parsed) == reference
    else:
        assert validate_tag(parsed) == reference and "/" not in parsed and len(parsed) <= 128


@EXAMPLES
@given(st.binary(max_size=512), st.sampled_from(["sha256", "sha512"]))
def test_digest_round_trip(data: bytes, algorithm: str) -> None:
    tried("core: digests")
    digest = Digest.of(data, algorithm)
    assert Digest.parse(str(digest)) == digest


@EXAMPLES
@given(st.one_of(TEXT, st.from_regex(r"\A[a-z0-9+._-]{1,12}:[a-zA-Z0-9=_-]{0,140}\Z")))
def test_any_digest_text_parses_or_is_digest_invalid(value: str) -> None:
    tried("core: digests")
    try:
        digest = Digest.parse(value)
    except e.RegistryError as err:
        assert err.code is e.DIGEST_INVALID
        return
    assert str(digest) == value and "/" not in digest.encoded and "." not in digest.encoded


@EXAMPLES
@given(st.one_of(st.none(), TEXT, st.from_regex(r"\A\s*bytes=\d{0,14}-\d{0,14}\s*\Z")), st.integers(0, 10**13))
def test_any_range_header_is_in_bounds_none_or_416(header: str | None, length: int) -> None:
    tried("core: range headers")
    try:
        parsed = parse_range(header, length)
    except e.RegistryError as err:
        assert err.status == 416 and err.headers["Content-Range"] == f"bytes */{length}"
        return
    if parsed is not None:
        assert 0 <= parsed.start <= parsed.end < length == parsed.length
        assert parsed.size == parsed.end - parsed.start + 1


@EXAMPLES
@given(st.binary(min_size=1, max_size=64), st.integers(0, 80), st.integers(0, 80))
def test_satisfiable_ranges_match_slicing(data: bytes, first: int, last: int) -> None:
    tried("core: range headers")
    try:
        parsed = parse_range(f"bytes={first}-{last}", len(data))
    except e.RegistryError:
        assert first >= len(data) or last < first
        return
    assert parsed is not None
    assert data[parsed.start : parsed.end + 1] == data[first : last + 1]


@EXAMPLES
@given(st.one_of(TEXT, st.from_regex(r"\A(bytes[= ])?-?\d{0,20}--?\d{0,20}(/(\d+|\*))?\Z")))
def test_any_upload_content_range_is_ordered_or_none(header: str) -> None:
    tried("core: content-range")
    parsed = parse_upload_range(header)
    if parsed is not None:
        assert 0 <= parsed[0] <= parsed[1]


ACTIONS = st.lists(st.sampled_from(["pull", "push", "delete", "list", "*"]), min_size=1, max_size=4, unique=True)


@EXAMPLES
@given(NAMES, ACTIONS, st.booleans())
def test_scope_round_trip(name: str, actions: list[str], with_host: bool) -> None:
    tried("core: scopes")
    if with_host:
        name = f"registry.example.com:5000/{name}"
    scope = Scope("repository", name, tuple(actions))
    assert parse_scope(str(scope)) == scope
    assert parse_scopes([f"{scope} {scope}"]) == [scope]


@EXAMPLES
@given(st.lists(TEXT, max_size=4))
def test_any_scope_text_parses_or_is_ignored(values: list[str]) -> None:
    tried("core: scopes")
    for scope in parse_scopes(values):
        assert scope.type and scope.name and ":" not in scope.type
        assert parse_scope(str(scope)) == scope or not scope.actions


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@EXAMPLES
@given(JSON, st.sampled_from(["repository", "registry"]), NAMES)
def test_allowed_actions_never_trusts_malformed_claims(access: Any, rtype: str, name: str) -> None:
    tried("core: scopes")
    granted = allowed_actions(access, rtype, name)
    assert all(isinstance(a, str) for a in granted)


@EXAMPLES
@given(st.text(max_size=40), st.text(max_size=40), NAMES, ACTIONS)
def test_challenge_round_trip(realm: str, service: str, name: str, actions: list[str]) -> None:
    tried("core: challenges")
    if '"' in realm + service or "\\" in realm + service:
        return
    scheme, params = parse_challenge(challenge(realm, service, [Scope("repository", name, tuple(actions))]))
    assert scheme == "bearer" and params["realm"] == realm and params["service"] == service


def _desc(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data)}


@EXAMPLES
@given(st.lists(st.binary(max_size=16), max_size=6), st.dictionaries(st.text(max_size=8), st.text(max_size=8)))
def test_generated_image_manifests_parse_to_their_descriptors(layers: list[bytes], annotations: dict[str, str]) -> None:
    tried("core: manifests")
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": _desc(mt.OCI_CONFIG, b"{}"),
        "layers": [_desc("application/vnd.oci.image.layer.v1.tar", layer) for layer in layers],
        "annotations": annotations,
    }
    parsed = parse_manifest(json.dumps(doc).encode(), mt.OCI_MANIFEST)
    assert [str(b.digest) for b in parsed.blobs] == [str(Digest.of(b"{}"))] + [str(Digest.of(x)) for x in layers]
    assert parsed.annotations == annotations and not parsed.is_index


@EXAMPLES
@given(st.lists(st.binary(max_size=16), max_size=6), st.sampled_from(sorted(mt.INDEXES)))
def test_generated_indexes_parse_to_their_children(children: list[bytes], media_type: str) -> None:
    tried("core: indexes")
    doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": [_desc(mt.OCI_MANIFEST, c) for c in children]}
    parsed = parse_manifest(json.dumps(doc).encode(), None)
    assert parsed.is_index and [str(c.digest) for c in parsed.children] == [str(Digest.of(c)) for c in children]


MANIFEST_KEYS = ["schemaVersion", "mediaType", "config", "layers", "manifests", "subject", "artifactType"]


@EXAMPLES
@given(
    st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.sampled_from(MANIFEST_KEYS), JSON, max_size=7).map(lambda v: json.dumps(v).encode()),
        st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(1, 100_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    ),
    st.one_of(st.none(), st.sampled_from(sorted(mt.MANIFEST_TYPES)), st.text(max_size=30)),
)
def test_any_manifest_body_parses_or_is_manifest_invalid(body: bytes, content_type: str | None) -> None:
    tried("core: manifests")
    try:
        parsed = parse_manifest(body, content_type)
    except e.RegistryError as err:
        assert err.code in (e.MANIFEST_INVALID, e.DIGEST_INVALID), err
        return
    assert parsed.media_type in mt.MANIFEST_TYPES
