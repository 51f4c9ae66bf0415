"""Content digests: the ``algorithm:encoded`` value type, validation and incremental hashing.

Supported algorithms are sha256 and sha512 (OCI image-spec "Digests"). A string that does not match the
digest grammar, or names an algorithm we do not support, raises ``DIGEST_INVALID``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from registry.oci.errors import DIGEST_INVALID, RegistryError

_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_ENCODED = {
    "sha256": re.compile(r"^[a-f0-9]{64}$"),
    "sha512": re.compile(r"^[a-f0-9]{128}$"),
}
ALGORITHMS = tuple(_ENCODED)


class Hasher(Protocol):
    """The part of ``hashlib``'s hash objects we use."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> Hasher: ...


@dataclass(frozen=True, order=True)
class Digest:
    """A validated content digest such as ``sha256:9f86…``."""

    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse and validate ``value``.

        Raises:
            RegistryError: ``DIGEST_INVALID`` if the grammar does not match or the algorithm is unsupported.
        """
        if not _GRAMMAR.fullmatch(value):
            raise RegistryError(DIGEST_INVALID, f"invalid digest {value[:200]!r}")
        algorithm, encoded = value.split(":", 1)
        pattern = _ENCODED.get(algorithm)
        if pattern is None:
            raise RegistryError(DIGEST_INVALID, f"unsupported digest algorithm {algorithm!r}")
        if not pattern.fullmatch(encoded):
            raise RegistryError(DIGEST_INVALID, f"invalid {algorithm} digest {value[:200]!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data``."""
        hasher = new_hasher(algorithm)
        hasher.update(data)
        return cls(algorithm, hasher.hexdigest())


def is_digest(value: str) -> bool:
    """True if ``value`` looks like a digest reference (contains ``:``), as opposed to a tag."""
    return ":" in value


def new_hasher(algorithm: str = "sha256") -> Hasher:
    """A fresh incremental hasher for ``algorithm`` (sha256 or sha512)."""
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "sha512":
        return hashlib.sha512()
    raise RegistryError(DIGEST_INVALID, f"unsupported digest algorithm {algorithm!r}")
