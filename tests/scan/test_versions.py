"""Version ordering against each ecosystem's own test vectors."""

from __future__ import annotations

import pytest

from registry.extensions.vulndb.versions import (
    UnsupportedVersion,
    apk_compare,
    comparator_for,
    dpkg_compare,
    pep440_compare,
    rpm_compare,
    rpmvercmp,
    semver_compare,
)

_OPS = {"<": -1, "=": 0, ">": 1}

# A selection of apk-tools test/version.data (format "a OP b"), including its tricky lines: invalid trailing
# text, leading zeros, pre/post suffixes, -rN revisions and the newer double-suffix vectors.
APK_VECTORS = """
2.34 > 0.1.0_alpha
23_foo > 4_beta
1.0 < 1.0bc
0.1.0_alpha = 0.1.0_alpha
0.1.0_alpha2 > 0.1.0_alpha
0.1.0_alpha < 2.2.39-r1
1.0.4-r3 < 1.0.4-r4
1.1 > 1.1_alpha1
1.2.1 > 1.2
1.3_alpha2 < 1.3_alpha3
2.3.0b-r1 < 2.3.0b-r2
0.12.3 > 0.12
0.12 < 0.13_beta1
1.2.11 < 1.2.12.1
3.1_p16 < 3.1_p17
1.06-r6 < 006
006 > 1.0.0
1.2.2-r1 > 1.2.2
9.3.4-r2 > 9.3.4
2.59 < 20050718-r1
2.01.01_alpha10 > 0.94
1.0 > 0.99.3.20040818
1.00_beta2 > 0.9.2
4.2.52_p2-r1 < 4.2.52_p4-r2
1.02.07 < 1.02.10-r1
2.18.3-r10 > 1.05-r18
1.05-r18 < 1.05-r19
20060720 > 3.0.20060720
1.3.5-r10 > 1.3.5-r8
2.5.1-r8 < 2.5.1a-r1
2.0.0_rc3-r1 > 1.5
3.0.0-r2 < 021109-r3
021109-r3 < 20060512
3.9_pre20060124 > 0.01
0.10.0-r1 > 0.10.0
0.10.0 < 0.10.1_rc1
1.1a < 1.3a
0.15.1b-r2 > 0.15.1b
10.0001 < 10.1
1.6d > 1.2.07.8
1.2.07.8 < 1.2.12.04
0.20070118 < 0.20070207_rc1
4.5_p1-r1 > 4.5_p1
0.9.8c-r1 < 0.9.8d
1.7 < 1.7b
1.8.5 < 1.8.5_p2
2.9.11_pre20051101-r3 > 2.9.11_pre20051101
0.9.28-r2 < 0.9.28.1
087-r1 < 103
104-r11 > 104-r9
1.2.5_rc2 > 0.1
2.12r-r4 < 2.12r-r5
7.0.17 < 7.0.174
1.3-r0 < 1.3.1-r0
1.3_pre1-r1 < 1.3.2
1.0_p10-r0 > 1.0_p9-r0
0.1.0_alpha_pre2 < 0.1.0_alpha
1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
"""

# rpm's tests/rpmvercmp.at (all of it), plus the caret cases added with rpm 4.15.
RPM_VECTORS = [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0", "1.0", 1), ("2.0.1", "2.0.1", 0), ("2.0", "2.0.1", -1),
    ("2.0.1", "2.0", 1), ("2.0.1a", "2.0.1a", 0), ("2.0.1a", "2.0.1", 1), ("2.0.1", "2.0.1a", -1),
    ("5.5p1", "5.5p1", 0), ("5.5p1", "5.5p2", -1), ("5.5p2", "5.5p1", 1), ("5.5p10", "5.5p10", 0),
    ("5.5p1", "5.5p10", -1), ("5.5p10", "5.5p1", 1), ("10xyz", "10.1xyz", -1), ("10.1xyz", "10xyz", 1),
    ("xyz10", "xyz10", 0), ("xyz10", "xyz10.1", -1), ("xyz10.1", "xyz10", 1), ("xyz.4", "xyz.4", 0),
    ("xyz.4", "8", -1), ("8", "xyz.4", 1), ("xyz.4", "2", -1), ("2", "xyz.4", 1), ("5.5p2", "5.6p1", -1),
    ("5.6p1", "5.5p2", 1), ("5.6p1", "6.5p1", -1), ("6.5p1", "5.6p1", 1), ("6.0.rc1", "6.0", 1),
    ("6.0", "6.0.rc1", -1), ("10b2", "10a1", 1), ("10a2", "10b2", -1), ("1.0aa", "1.0aa", 0), ("1.0a", "1.0aa", -1),
    ("1.0aa", "1.0a", 1), ("10.0001", "10.0001", 0), ("10.0001", "10.1", 0), ("10.1", "10.0001", 0),
    ("10.0001", "10.0039", -1), ("10.0039", "10.0001", 1), ("4.999.9", "5.0", -1), ("5.0", "4.999.9", 1),
    ("20101121", "20101121", 0), ("20101121", "20101122", -1), ("20101122", "20101121", 1), ("2_0", "2_0", 0),
    ("2.0", "2_0", 0), ("2_0", "2.0", 0), ("a", "a", 0), ("a+", "a+", 0), ("a+", "a_", 0), ("a_", "a+", 0),
    ("+a", "+a", 0), ("+a", "_a", 0), ("_a", "+a", 0), ("+_", "+_", 0), ("_+", "+_", 0), ("_+", "_+", 0),
    ("+", "_", 0), ("_", "+", 0), ("1.0~rc1", "1.0~rc1", 0), ("1.0~rc1", "1.0", -1), ("1.0", "1.0~rc1", 1),
    ("1.0~rc1", "1.0~rc2", -1), ("1.0~rc2", "1.0~rc1", 1), ("1.0~rc1~git123", "1.0~rc1~git123", 0),
    ("1.0~rc1~git123", "1.0~rc1", -1), ("1.0~rc1", "1.0~rc1~git123", 1),
    ("1.0^", "1.0^", 0), ("1.0^", "1.0", 1), ("1.0", "1.0^", -1), ("1.0^git1", "1.0", 1), ("1.0^git1", "1.0^git2", -1),
    ("1.0^git1", "1.01", -1), ("1.0^20160101", "1.0.1", -1), ("1.0~rc1^git1", "1.0~rc1", 1),
    ("1.0^git1~pre", "1.0^git1", -1),
]  # fmt: skip

# The orderings dpkg's lib/dpkg/t/t-version.c and deb-version(5) spell out.
DPKG_VECTORS = [
    ("1.0", "1.0", 0), ("0:1.0", "1.0", 0), ("1.0", "1.0-0", 0), ("1:1.0", "2.0", 1), ("1.0-1", "1.0-2", -1),
    ("1.0~rc1", "1.0", -1), ("1.0~~", "1.0~~a", -1), ("1.0~~a", "1.0~", -1), ("1.0~", "1.0", -1),
    ("1.0", "1.0a", -1), ("1.0a", "1.0+", -1), ("1.0+", "1.0.", -1), ("1.0.1", "1.0a", 1),
    ("3.0.11-1~deb12u2", "3.0.11-1", -1), ("1.2.3-1+deb12u1", "1.2.3-1", 1), ("1:4.13+dfsg1-1", "4.14-1", 1),
    ("2.30-1", "2.4-1", 1), ("0.9", "0.10", -1), ("1.0-1ubuntu1", "1.0-1", 1), ("7.6p2-4", "7.6-0", 1),
    ("1.18.36-0.17.35", "1.18.37", -1), ("1:2", "1:10", -1),
]  # fmt: skip

# packaging's ordering examples (PEP 440 "Summary of permitted suffixes and relative ordering").
PEP440_CHAIN = ["1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456", "1.0b2",
                "1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5", "1.0+abc.7",
                "1.0+5", "1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1"]  # fmt: skip

# semver.org §11 example chain.
SEMVER_CHAIN = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
                "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1"]  # fmt: skip


def _apk_cases() -> list[tuple[str, str, int]]:
    cases = []
    for line in APK_VECTORS.strip().splitlines():
        a, op, b = line.split()
        cases.append((a, b, _OPS[op]))
    return cases


@pytest.mark.parametrize(("a", "b", "expected"), _apk_cases())
def test_apk_version_data(a: str, b: str, expected: int) -> None:
    assert apk_compare(a, b) == expected
    assert apk_compare(b, a) == -expected


@pytest.mark.parametrize(("a", "b", "expected"), RPM_VECTORS)
def test_rpmvercmp(a: str, b: str, expected: int) -> None:
    assert rpmvercmp(a, b) == expected


def test_rpm_evr() -> None:
    assert rpm_compare("1:1.0-1", "2.0-1") == 1
    assert rpm_compare("1.0-1.el9", "1.0-2.el9") == -1
    assert rpm_compare("1.0", "1.0-5.el9") == 0  # no release: any release matches, as in rpm dependencies
    assert rpm_compare("3.0.7-25.el9_3", "3.0.7-24.el9") == 1


@pytest.mark.parametrize(("a", "b", "expected"), DPKG_VECTORS)
def test_dpkg(a: str, b: str, expected: int) -> None:
    assert dpkg_compare(a, b) == expected
    assert dpkg_compare(b, a) == -expected


@pytest.mark.parametrize(("chain", "compare"), [(PEP440_CHAIN, pep440_compare), (SEMVER_CHAIN, semver_compare)])
def test_total_order_chains(chain: list[str], compare: object) -> None:
    assert callable(compare)
    for i, low in enumerate(chain):
        assert compare(low, low) == 0
        for high in chain[i + 1 :]:
            assert compare(low, high) == -1, (low, high)
            assert compare(high, low) == 1, (high, low)


def test_semver_ignores_build_metadata_and_rejects_garbage() -> None:
    assert semver_compare("1.0.0+build.1", "1.0.0+build.2") == 0
    assert semver_compare("v1.2.3", "1.2.3") == 0
    with pytest.raises(UnsupportedVersion):
        semver_compare("1.2", "1.2.0")
    with pytest.raises(UnsupportedVersion):
        pep440_compare("not a version", "1.0")


def test_comparator_for_ecosystems() -> None:
    assert comparator_for("Debian:12") is dpkg_compare
    assert comparator_for("Alpine:v3.19") is apk_compare
    assert comparator_for("Rocky Linux:9") is rpm_compare
    assert comparator_for("PyPI") is pep440_compare
    assert comparator_for("npm") is semver_compare
    assert comparator_for("Maven") is None
