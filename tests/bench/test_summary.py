"""The README's performance summary is generated, and the committed one is what the committed results render to."""

from __future__ import annotations

from pathlib import Path

from bench import summary
from bench.results import Results
from tests.serverproc import ROOT


def _committed() -> Results:
    return Results.load(ROOT / "bench" / "results" / "results.json")


def test_readme_summary_matches_committed_results() -> None:
    readme = (ROOT / "README.md").read_text()
    assert summary.block(_committed()) in readme


def test_every_target_has_a_row_and_a_verdict() -> None:
    table = summary.summary(_committed())
    for target in summary.TARGETS:
        assert f"| {target.label} |" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows and all(line.rstrip(" |").endswith(("yes", "**no**")) for line in rows)


def test_update_replaces_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{summary.BEGIN}\nstale\n{summary.END}\noutro\n")
    summary.update_readme(readme, _committed())
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "stale" not in text
    assert summary.summary(_committed()) in text
