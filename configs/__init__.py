"""attnbench YAML configs, shipped with the package so they are found at run time."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def path(*parts: str) -> Path:
    """Path of a shipped config, e.g. ``configs.path("bench", "cpu.yaml")``."""
    return ROOT.joinpath(*parts)
