"""Version ordering per ecosystem: dpkg, apk, rpm, PEP 440 and SemVer. Pure functions, no I/O.

Each comparator returns a negative number, zero or a positive number like C's ``strcmp``.
- dpkg: python-debian's ``version_compare`` (epoch, upstream, revision; ``~`` sorts before everything).
- apk: a port of apk-tools' ``version.c`` (tokens digit / letter / suffix / suffix number / ``-rN``; pre-release
  suffixes ``alpha beta pre rc`` sort before the bare version, ``cvs svn git hg p`` after; invalid trailing text
  falls back to the token-type rule apk uses). univers' apk comparisons are wrong (its issue #172), so not used.
- rpm: ``rpmvercmp`` (alternating alphanumeric segments, ``~`` before and ``^`` after everything) applied to
  ``[epoch:]version[-release]``.
- PEP 440: ``packaging.version``; SemVer 2.0.0: precedence rules of semver.org §11 (build metadata ignored).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from debian.debian_support import version_compare as _dpkg_compare
from packaging.version import InvalidVersion, Version

Comparator = Callable[[str, str], int]


class UnsupportedVersion(ValueError):
    """The version string cannot be ordered in its ecosystem."""


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


def dpkg_compare(a: str, b: str) -> int:
    try:
        return _sign(_dpkg_compare(a, b))
    except ValueError as exc:
        raise UnsupportedVersion(str(exc)) from exc


# -- apk (apk-tools src/version.c) -----------------------------------------------------------------------------

_T_INVALID, _T_DIGIT_OR_ZERO, _T_DIGIT, _T_LETTER, _T_SUFFIX, _T_SUFFIX_NO, _T_REVISION_NO, _T_END = range(-1, 7)
_PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
_POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")


class _ApkCursor:
    """The blob pointer and token type of apk's tokenizer."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.pos = 0
        self.type = _T_DIGIT

    def _next_token(self) -> None:
        s, prev = self.s, self.type
        n = _T_INVALID
        if self.pos >= len(s):
            n = _T_END
        else:
            c = s[self.pos]
            if prev in (_T_DIGIT, _T_DIGIT_OR_ZERO) and c.islower() and c.isascii():
                n = _T_LETTER
            elif prev == _T_LETTER and c.isdigit():
                n = _T_DIGIT
            elif prev == _T_SUFFIX and c.isdigit():
                n = _T_SUFFIX_NO
            else:
                if c == ".":
                    n = _T_DIGIT_OR_ZERO
                elif c == "_":
                    n = _T_SUFFIX
                elif c == "-" and self.pos + 1 < len(s) and s[self.pos + 1] == "r":
                    n = _T_REVISION_NO
                    self.pos += 1
                self.pos += 1
        if n < prev and not (
            (n == _T_DIGIT_OR_ZERO and prev == _T_DIGIT)
            or (n == _T_SUFFIX and prev == _T_SUFFIX_NO)
            or (n == _T_DIGIT and prev == _T_LETTER)
        ):
            n = _T_INVALID
        self.type = n

    def get_token(self) -> int:
        s, pos = self.s, self.pos
        if pos >= len(s):
            self.type = _T_END
            return 0
        i, v, nt = 0, 0, _T_INVALID
        kind = self.type
        if kind == _T_DIGIT_OR_ZERO and s[pos] == "0":
            while pos + i < len(s) and s[pos + i] == "0":
                i += 1
            nt, v = _T_DIGIT, -i
        elif kind in (_T_DIGIT_OR_ZERO, _T_DIGIT, _T_SUFFIX_NO, _T_REVISION_NO):
            while pos + i < len(s) and s[pos + i].isdigit() and s[pos + i].isascii():
                v = v * 10 + int(s[pos + i])
                i += 1
        elif kind == _T_LETTER:
            v, i = ord(s[pos]), 1
        elif kind == _T_SUFFIX:
            rest = s[pos:]
            pre = next((k for k, suf in enumerate(_PRE_SUFFIXES) if rest.startswith(suf)), None)
            if pre is not None:
                v, i = pre - len(_PRE_SUFFIXES), len(_PRE_SUFFIXES[pre])
            else:
                post = next((k for k, suf in enumerate(_POST_SUFFIXES) if rest.startswith(suf)), None)
                if post is None:
                    self.type = _T_INVALID
                    return -1
                v, i = post, len(_POST_SUFFIXES[post])
        else:
            self.type = _T_INVALID
            return -1
        self.pos += i
        if self.pos >= len(s):
            self.type = _T_END
        elif nt != _T_INVALID:
            self.type = nt
        else:
            self._next_token()
        return v


def apk_compare(a: str, b: str) -> int:
    ca, cb = _ApkCursor(a), _ApkCursor(b)
    av = bv = 0
    while ca.type == cb.type and ca.type not in (_T_END, _T_INVALID) and av == bv:
        av = ca.get_token()
        bv = cb.get_token()
    if av != bv:
        return -1 if av < bv else 1
    if ca.type == cb.type:
        return 0
    # equal so far: the longer version is greater unless what follows is a pre-release suffix
    if ca.type == _T_SUFFIX and _peek_suffix(ca) < 0:
        return -1
    if cb.type == _T_SUFFIX and _peek_suffix(cb) < 0:
        return 1
    if ca.type > cb.type:
        return -1
    if cb.type > ca.type:
        return 1
    return 0


def _peek_suffix(cursor: _ApkCursor) -> int:
    probe = _ApkCursor(cursor.s)
    probe.pos, probe.type = cursor.pos, cursor.type
    return probe.get_token()


# -- rpm (rpmvercmp) -------------------------------------------------------------------------------------------

_RPM_DIGITS = re.compile(r"[0-9]+")
_RPM_ALPHA = re.compile(r"[A-Za-z]+")


def rpmvercmp(a: str, b: str) -> int:
    """rpm's ``rpmvercmp`` on one field (version or release), step by step as in rpmio/rpmvercmp.c."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and not _rpm_alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < len(b) and not _rpm_alnum(b[j]) and b[j] not in "~^":
            j += 1
        ca = a[i] if i < len(a) else ""
        cb = b[j] if j < len(b) else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        pattern = _RPM_DIGITS if ca.isdigit() else _RPM_ALPHA
        sa = pattern.match(a, i)
        sb = pattern.match(b, j)
        assert sa is not None
        if sb is None:  # segments of different types: numeric is newer
            return 1 if pattern is _RPM_DIGITS else -1
        x, y = sa.group(), sb.group()
        if pattern is _RPM_DIGITS:
            x, y = x.lstrip("0"), y.lstrip("0")
            if len(x) != len(y):
                return 1 if len(x) > len(y) else -1
        if x != y:
            return 1 if x > y else -1
        i, j = sa.end(), sb.end()
    if i >= len(a) and j >= len(b):
        return 0
    return 1 if i < len(a) else -1


def _rpm_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def rpm_compare(a: str, b: str) -> int:
    """Compare ``[epoch:]version[-release]``; a missing release matches any release (as rpm does)."""
    ea, va, ra = _rpm_evr(a)
    eb, vb, rb = _rpm_evr(b)
    if ea != eb:
        return -1 if ea < eb else 1
    result = rpmvercmp(va, vb)
    if result or not ra or not rb:
        return result
    return rpmvercmp(ra, rb)


def _rpm_evr(evr: str) -> tuple[int, str, str]:
    epoch = 0
    head, sep, rest = evr.partition(":")
    if sep:
        if not head.isdigit():
            raise UnsupportedVersion(f"bad rpm epoch in {evr!r}")
        epoch, evr = int(head), rest
    version, _, release = evr.rpartition("-") if "-" in evr else (evr, "", "")
    return epoch, version, release


# -- PEP 440 and SemVer ----------------------------------------------------------------------------------------


def pep440_compare(a: str, b: str) -> int:
    try:
        va, vb = Version(a), Version(b)
    except InvalidVersion as exc:
        raise UnsupportedVersion(str(exc)) from exc
    return (va > vb) - (va < vb)


_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def _semver_key(text: str) -> tuple[tuple[int, int, int], list[str] | None]:
    m = _SEMVER.match(text.strip())
    if m is None:
        raise UnsupportedVersion(f"not a semantic version: {text!r}")
    pre = m.group(4)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))), (pre.split(".") if pre else None)


def _pre_compare(a: list[str], b: list[str]) -> int:
    for x, y in zip(a, b, strict=False):
        if x == y:
            continue
        xn, yn = x.isdigit(), y.isdigit()
        if xn and yn:
            return -1 if int(x) < int(y) else 1
        if xn != yn:
            return -1 if xn else 1
        return -1 if x < y else 1
    return (len(a) > len(b)) - (len(a) < len(b))


def semver_compare(a: str, b: str) -> int:
    (core_a, pre_a), (core_b, pre_b) = _semver_key(a), _semver_key(b)
    if core_a != core_b:
        return -1 if core_a < core_b else 1
    if pre_a is None or pre_b is None:
        return (pre_a is None) - (pre_b is None)
    return _pre_compare(pre_a, pre_b)


def comparator_for(ecosystem: str) -> Comparator | None:
    """The ordering of an OSV ecosystem name (``Debian:12``, ``Alpine:v3.19``, ``PyPI`` …), or None."""
    base = ecosystem.split(":", 1)[0]
    return _BY_ECOSYSTEM.get(base)


_BY_ECOSYSTEM: dict[str, Comparator] = {
    "Debian": dpkg_compare,
    "Ubuntu": dpkg_compare,
    "Alpine": apk_compare,
    "Wolfi": apk_compare,
    "Chainguard": apk_compare,
    "Red Hat": rpm_compare,
    "Rocky Linux": rpm_compare,
    "AlmaLinux": rpm_compare,
    "openSUSE": rpm_compare,
    "SUSE": rpm_compare,
    "Mageia": rpm_compare,
    "PyPI": pep440_compare,
    "npm": semver_compare,
    "crates.io": semver_compare,
    "Go": semver_compare,
    "SEMVER": semver_compare,
}
