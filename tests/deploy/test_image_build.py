"""The image builds with buildah from a locally debootstrapped base and serves: ``deploy/build-image.sh`` (slow:
debootstrap ~4 min the first time, the build ~3 min on 2 cores). The script itself checks HEALTHCHECK, /healthz,
/readyz, the HEALTHCHECK command, a skopeo push + pull through the image and a clean exit on SIGTERM."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.serverproc import ROOT

pytestmark = pytest.mark.slow
MARKERS = (
    "HEALTHCHECK kept",
    'GET /healthz: {"status":"ok"}',
    'GET /readyz: {"status":"ready"}',
    "the HEALTHCHECK command exits 0",
    "skopeo push + pull through the image: sha256:",
    "registry serve exited with 0 after SIGTERM",
    "smoke test passed",
)


def test_image_builds_serves_and_round_trips_an_image() -> None:
    missing = [tool for tool in ("buildah", "debootstrap", "skopeo") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        pytest.skip(f"needs root and {', '.join(missing) or 'nothing else'} (debootstrap and chroot need root)")
    # WORK keeps the root filesystem and the buildah storage between runs (debootstrap is the slow part)
    env = {**os.environ, "WORK": os.environ.get("IMAGE_WORK", "/var/tmp/oci-registry-image")}
    done = subprocess.run(
        [str(ROOT / "deploy" / "build-image.sh")], env=env, capture_output=True, text=True, timeout=3600
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    for marker in MARKERS:
        assert marker in done.stdout, done.stdout
