"""The merged view follows the OCI image-spec layer rules without extracting anything."""

from __future__ import annotations

import io

from registry.extensions.sbom.fsview import MergedView
from tests.supplychain.fixtures import F, layer, opaque, whiteout


def keep_all(path: str, mode: int, size: int) -> str | None:
    return "content"


def view(*layers: bytes) -> MergedView:
    v = MergedView(keep_all, lambda path, data: [])
    for data in layers:
        v.add_layer(io.BytesIO(data))
    return v


def paths(v: MergedView) -> set[str]:
    return {p for p in v.entries if p}


def test_whiteout_removes_lower_file_and_subtree() -> None:
    v = view(
        layer(("a/keep", b"1"), ("a/gone", b"2"), ("b/x/y", b"3"), ("b/z", b"4")),
        layer(whiteout("a/gone"), whiteout("b/x")),
    )
    assert paths(v) == {"a", "a/keep", "b", "b/z"}


def test_whiteout_applies_only_to_lower_layers() -> None:
    # The same layer re-creates the path it whites out: the new file survives, the old one does not.
    v = view(layer(("etc/conf", b"old")), layer(whiteout("etc/conf"), ("etc/conf", b"new")))
    assert v.read("etc/conf") == b"new"
    v = view(layer(("etc/conf", b"old")), layer(("etc/conf", b"new"), whiteout("etc/conf")))
    assert v.read("etc/conf") == b"new"


def test_opaque_dir_hides_lower_content_but_keeps_the_layers_own() -> None:
    v = view(
        layer(("d/old1", b"1"), ("d/sub/old2", b"2"), ("other", b"3")),
        layer(F("d", dir=True), ("d/new", b"4"), opaque("d")),
    )
    assert paths(v) == {"d", "d/new", "other"}


def test_file_replaces_directory_and_directory_replaces_file() -> None:
    v = view(layer(("x/a", b"1"), ("x/b/c", b"2"), ("y", b"3")), layer(("x", b"file now"), ("y/inner", b"4")))
    assert paths(v) == {"x", "y", "y/inner"}
    assert v.read("x") == b"file now"


def test_symlinks_resolve_inside_the_view() -> None:
    v = view(
        layer(
            ("usr/lib/os-release", b"ID=debian\n"),
            F("etc/os-release", link="../usr/lib/os-release"),
            F("lib", link="usr/lib"),
            F("abs", link="/usr/lib/os-release"),
            F("escape", link="../../../../usr/lib/os-release"),
            F("loop1", link="loop2"),
            F("loop2", link="loop1"),
        )
    )
    assert v.read("etc/os-release") == b"ID=debian\n"
    assert v.read("lib/os-release") == b"ID=debian\n"
    assert v.read("abs") == b"ID=debian\n"
    assert v.read("escape") == b"ID=debian\n"  # ".." never leaves the image root
    assert v.read("loop1") is None


def test_symlink_replaced_by_a_later_layer_and_hardlinks() -> None:
    v = view(
        layer(("a", b"A"), F("link", link="a")),
        layer(whiteout("a"), ("b", b"B"), F("hard", hardlink="b")),
    )
    assert v.read("link") is None  # dangling after the whiteout
    assert v.read("hard") == b"B"
