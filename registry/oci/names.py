"""Repository name, tag and reference grammar (distribution-spec "Pulling manifests")."""

from __future__ import annotations

import re

from registry.oci.digest import Digest, is_digest
from registry.oci.errors import NAME_INVALID, TAG_INVALID, RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
NAME_MAX_LENGTH = 255


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name.

    Raises:
        RegistryError: ``NAME_INVALID``.
    """
    if len(name) > NAME_MAX_LENGTH or not _NAME.fullmatch(name):
        raise RegistryError(NAME_INVALID, f"invalid repository name {name[:300]!r}")
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it matches ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``.

    Raises:
        RegistryError: ``TAG_INVALID``.
    """
    if not _TAG.fullmatch(tag):
        raise RegistryError(TAG_INVALID, f"invalid tag {tag[:200]!r}")
    return tag


def namespace_of(name: str) -> str:
    """The namespace of a repository: its first path component."""
    return name.split("/", 1)[0]


def parse_reference(reference: str) -> str | Digest:
    """A manifest reference is either a digest or a tag.

    Raises:
        RegistryError: ``DIGEST_INVALID`` or ``TAG_INVALID``.
    """
    if is_digest(reference):
        return Digest.parse(reference)
    return validate_tag(reference)
