"""Pure parts of the edge: freshness decisions, settings, containerd's hosts.toml, single-flight.
Auth mode: not involved (pure functions), except where a test names one."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edge.cli import main
from edge.containerd import hosts_toml
from edge.freshness import Freshness, FreshnessPolicy, OnFailure, decide, on_upstream_failure
from edge.settings import SettingsError, load_settings
from edge.singleflight import SingleFlight

POLICY = FreshnessPolicy(tag_ttl=60, max_stale=300)


@pytest.mark.parametrize(
    ("age", "expected"),
    [(0, Freshness.FRESH), (59.9, Freshness.FRESH), (60, Freshness.REVALIDATE), (-1, Freshness.REVALIDATE)],
)
def test_tag_freshness(age: float, expected: Freshness) -> None:
    assert decide(1000.0, 1000.0 + age, POLICY) is expected


@pytest.mark.parametrize(
    ("age", "expected"), [(61, OnFailure.SERVE_STALE), (360, OnFailure.SERVE_STALE), (360.1, OnFailure.FAIL)]
)
def test_stale_only_within_max_stale(age: float, expected: OnFailure) -> None:
    assert on_upstream_failure(1000.0, 1000.0 + age, POLICY) is expected


def test_zero_ttl_always_revalidates() -> None:
    assert decide(5.0, 5.0, FreshnessPolicy(0, 10)) is Freshness.REVALIDATE


def test_settings_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('upstream = "http://primary:5000"\ncache_size_mib = 64\nupstream_names = ["reg.example"]\n')
    settings = load_settings(path, {"tag_ttl": 5, "cache_size_mib": None})
    assert settings.cache_size_bytes == 64 * 1024 * 1024
    assert settings.tag_ttl == 5.0
    assert settings.names() == {"primary:5000", "reg.example"}


@pytest.mark.parametrize(
    "text",
    [
        'upstream = "http://p"\nbogus = 1\n',
        'upstream = "ftp://p"\n',
        'upstream = "http://p"\ncache_size_mib = "x"\n',
        'upstream = "http://p"\nlog_format = "xml"\n',
    ],
)
def test_settings_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    with pytest.raises(SettingsError):
        load_settings(path)


def test_hosts_toml_is_valid_toml() -> None:
    doc = tomllib.loads(hosts_toml("https://reg.example", "http://10.0.0.1:5001", "1500ms"))
    assert doc["server"] == "https://reg.example"
    mirror = doc["host"]["http://10.0.0.1:5001"]
    assert mirror["capabilities"] == ["pull", "resolve"]
    assert mirror["dial_timeout"] == "1500ms"


def test_containerd_config_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["containerd-config", "--registry-host", "reg.example", "--edge-url", "http://edge:5001/"]) == 0
    out = capsys.readouterr().out
    assert "containerd >= 2.1" in out and "config_path" in out
    doc = tomllib.loads(out)
    assert doc["server"] == "https://reg.example"
    assert "http://edge:5001" in doc["host"]


def test_single_flight_creates_once() -> None:
    flights: SingleFlight[str, object] = SingleFlight()
    first, created = flights.claim("k", object)
    again, created_again = flights.claim("k", object)
    assert created and not created_again and first is again
    flights.release("k", object())  # not the registered flight: ignored
    assert flights.get("k") is first
    flights.release("k", first)
    assert flights.get("k") is None and len(flights) == 0
