"""OSV range evaluation (introduced / fixed / last_affected / limit) and purl mapping, without I/O."""

from __future__ import annotations

import pytest

from registry.extensions.scan.sbom import distro_ecosystem, parse_purl
from registry.extensions.vulndb.osv import evaluate, range_includes
from registry.extensions.vulndb.versions import apk_compare, dpkg_compare, semver_compare

# two affected windows: [1.0.0, 1.2.0) and [2.0.0, 2.0.3]
EVENTS = [("introduced", "2.0.0"), ("fixed", "1.2.0"), ("last_affected", "2.0.3"), ("introduced", "1.0.0")]


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.9.0", False), ("1.0.0", True), ("1.1.9", True), ("1.2.0", False), ("1.9.9", False), ("2.0.0", True),
     ("2.0.3", True), ("2.0.4", False), ("2.0.0-rc.1", False)],
)  # fmt: skip
def test_unsorted_events_make_two_windows(version: str, expected: bool) -> None:
    assert range_includes(EVENTS, version, semver_compare) is expected


def test_limit_bounds_the_range() -> None:
    events = [("introduced", "0"), ("limit", "1.5.0")]
    assert range_includes(events, "1.4.9", semver_compare)
    assert not range_includes(events, "1.5.0", semver_compare)


def test_distro_boundaries() -> None:
    assert range_includes([("introduced", "0"), ("fixed", "1:1.0-1")], "1:0.9-1", dpkg_compare)
    assert not range_includes([("introduced", "0"), ("fixed", "1.0-1")], "1:0.9-1", dpkg_compare)  # epoch
    assert range_includes([("introduced", "0"), ("fixed", "1.0-1")], "1.0-1~bpo1", dpkg_compare)  # ~
    assert range_includes([("introduced", "0"), ("fixed", "1.0-r10")], "1.0-r9", apk_compare)  # numeric -rN
    assert not range_includes([("introduced", "0"), ("fixed", "1.0-r1")], "1.0-r1", apk_compare)  # equal fixed


def test_ecosystem_must_match_exactly_and_unparsable_versions_do_not_match() -> None:
    record = {
        "id": "X-1",
        "affected": [
            {"package": {"ecosystem": "Debian:12", "name": "openssl"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1"}]}]},
            {"package": {"ecosystem": "npm", "name": "left-pad"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}]},
        ],
    }  # fmt: skip
    assert evaluate(record, "Debian:12", "openssl", "3.0.11-1") is not None
    assert evaluate(record, "Debian:11", "openssl", "3.0.11-1") is None
    assert evaluate(record, "npm", "left-pad", "not-semver") is None
    found = evaluate(record, "npm", "left-pad", "0.9.0")
    assert found is not None and found.fixed == ("1.0.0",) and found.severity == "UNKNOWN"


def test_purls() -> None:
    purl = parse_purl("pkg:npm/%40babel/traverse@7.22.0?foo=bar#sub")
    assert purl is not None
    assert (purl.type, purl.namespace, purl.name, purl.version) == ("npm", "@babel", "traverse", "7.22.0")
    assert parse_purl("not a purl") is None
    assert distro_ecosystem("deb", "debian-12.4") == "Debian:12"
    assert distro_ecosystem("apk", "alpine-3.19.1") == "Alpine:v3.19"
    assert distro_ecosystem("deb", "ubuntu-22.04") == "Ubuntu:22.04"
    assert distro_ecosystem("rpm", "fedora-40") is None
