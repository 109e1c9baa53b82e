"""What the regression gate judges with and what it returns: tolerances, findings, the result.

Shared by the gate (``reports.check``, whose docstring gives the rules and the defaults' reasons)
and its Markdown summary (``reports.check_summary``), so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerances:
    """What the gate lets pass; the defaults and their reasons are in ``reports.check``'s docstring."""

    speed: float = 0.10
    memory: float = 0.10
    memory_floor_mib: float = 12.0
    accuracy: float = 0.01
    alpha: float = 0.10
    train_speed: float | None = None  # None: training throughput is shown but not judged

    def __post_init__(self) -> None:
        for name in ("speed", "memory", "memory_floor_mib", "accuracy", "train_speed"):
            if (getattr(self, name) or 0.0) < 0:
                raise ValueError(f"tolerance {name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")


@dataclass(frozen=True)
class Finding:
    device: str
    kind: str
    item: str
    baseline: str
    current: str
    change: str
    verdict: str  # regression | improved | ok
    note: str = ""


@dataclass
class CheckResult:
    exit_code: int
    findings: list[Finding]
    not_compared: list[str]
    errors: list[str]
    markdown: str = ""

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "regression"]
