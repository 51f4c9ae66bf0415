"""Measurements and their summary: every value of every round is kept; medians, min–max and ratios are derived.

A ``Metric`` is one row of the results table: a workload, what was measured, its unit, whether higher or lower
is better, and the raw values for ours and for Distribution. ``ratio`` is always median(ours) / median(theirs),
so read it with ``better``: ≥ 1 is good for "higher", ≤ 1 for "lower".
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

WORKLOADS = {
    "blob": "1. blob ingest (POST+PUT) and serve (GET), curl",
    "image": "2. skopeo push and pull",
    "concurrent": "3. concurrent GETs of one blob",
    "manifest": "4. manifest GET / HEAD",
    "proxy": "5. pull-through cache: our edge vs Distribution's proxy mode",
    "resources": "6. server resources during big transfers",
    "ceiling": "7. ceilings on this machine (no registry involved)",
}


@dataclass
class Metric:
    workload: str
    name: str
    unit: str
    better: str  # "higher" or "lower"
    ours: list[float] = field(default_factory=list)
    theirs: list[float] = field(default_factory=list)
    ours_label: str = "ours"
    theirs_label: str = "distribution"

    def summary(self, values: list[float]) -> dict[str, float] | None:
        if not values:
            return None
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    @property
    def ratio(self) -> float | None:
        if not self.ours or not self.theirs:
            return None
        theirs = statistics.median(self.theirs)
        return statistics.median(self.ours) / theirs if theirs else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ours_summary": self.summary(self.ours),
                "theirs_summary": self.summary(self.theirs), "ratio": self.ratio}


class Results:
    """All metrics of one run, in the order they were first recorded, plus facts about the run (``meta``)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self.metrics: dict[tuple[str, str], Metric] = {}

    def metric(self, workload: str, name: str, unit: str, better: str, *,
               ours_label: str = "ours", theirs_label: str = "distribution") -> Metric:
        key = (workload, name)
        if key not in self.metrics:
            self.metrics[key] = Metric(workload, name, unit, better, ours_label=ours_label,
                                       theirs_label=theirs_label)
        return self.metrics[key]

    def add(self, workload: str, name: str, unit: str, better: str, who: str, value: float, **labels: str) -> None:
        """Record one value; ``who`` is ``"ours"`` or ``"theirs"``."""
        metric = self.metric(workload, name, unit, better, **labels)
        (metric.ours if who == "ours" else metric.theirs).append(value)

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta, "metrics": [m.to_json() for m in self.metrics.values()]}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Results:
        doc = json.loads(path.read_text())
        results = cls(doc["meta"])
        for m in doc["metrics"]:
            metric = Metric(m["workload"], m["name"], m["unit"], m["better"], list(m["ours"]), list(m["theirs"]),
                            m["ours_label"], m["theirs_label"])
            results.metrics[(metric.workload, metric.name)] = metric
        return results
