"""Settings: TOML file, REGISTRY__SECTION__KEY overrides, flags; unknown keys and bad values fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, Settings, load_settings

BIN = Path(sys.executable).parent


def test_defaults_need_no_file() -> None:
    s = load_settings(None, environ={})
    assert s == Settings()
    assert s.server.listen == "127.0.0.1:5000" and s.limits.manifest_max_bytes == 4 * 1024 * 1024


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text(
        '[server]\nlisten = "127.0.0.1:6000"\ntrusted_proxies = ["10.0.0.0/8"]\n[storage]\nroot = "/srv/a"\n'
    )
    env = {
        "REGISTRY__STORAGE__ROOT": "/srv/b",
        "REGISTRY__LIMITS__MANIFEST_MAX_BYTES": "8192",
        "REGISTRY__LOG__ACCESS_LOG": "true",
        "OTHER": "x",
    }
    s = load_settings(cfg, environ=env, overrides={"server": {"listen": "127.0.0.1:7000"}})
    assert s.server.listen == "127.0.0.1:7000"
    assert s.server.trusted_proxies == ("10.0.0.0/8",)
    assert s.storage.root == "/srv/b"
    assert s.limits.manifest_max_bytes == 8192
    assert s.log.access_log is True


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nlisten = 5000\n", "server.listen: expected a string"),
        ("[server]\nlistne = '1'\n", "unknown key server.listne"),
        ("[srever]\nlisten = '1'\n", "unknown section [srever]"),
        ("[server]\nlisten = 'nohost'\n", "server.listen: expected HOST:PORT"),
        ("[server]\npublic_url = 'registry.example.com'\n", "server.public_url"),
        ("[server]\ntrusted_proxies = ['not-an-ip']\n", "server.trusted_proxies"),
        ("[server]\ntls_cert = '/x.pem'\n", "tls_cert and server.tls_key"),
        ("[limits]\nmanifest_max_bytes = true\n", "limits.manifest_max_bytes: expected a number"),
        ("[auth]\nmode = 'magic'\n", "auth.mode"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_files_fail_with_a_clear_message(tmp_path: Path, toml: str, message: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_settings(cfg, environ={})


def test_bad_env_value_fails() -> None:
    with pytest.raises(ConfigError, match=r"uploads\.ttl_seconds: expected a number"):
        load_settings(None, environ={"REGISTRY__UPLOADS__TTL_SECONDS": "soon"})
    with pytest.raises(ConfigError, match="REGISTRY__SECTION__KEY"):
        load_settings(None, environ={"REGISTRY__LISTEN": "x"})


def test_config_check_command(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[server]\npublic_url = "https://registry.example.com"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nbogus = 1\n")
    ok = subprocess.run([BIN / "registry", "config", "check", good], capture_output=True, text=True)
    assert ok.returncode == 0 and "OK" in ok.stdout
    fail = subprocess.run([BIN / "registry", "config", "check", bad], capture_output=True, text=True)
    assert fail.returncode == 2 and "unknown key server.bogus" in fail.stderr


def test_serve_refuses_bad_config_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[storage]\nroot = 3\n")
    run = subprocess.run([BIN / "registry", "serve", "--config", bad], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "storage.root: expected a string" in run.stderr
