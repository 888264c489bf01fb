from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def manifest() -> list[dict]:
    return json.loads((FIXTURES / "manifest.json").read_text())["fixtures"]


@pytest.fixture(autouse=True)
def _fixed_terminal(monkeypatch):
    # Rich sizes tables from COLUMNS; golden outputs are rendered at a fixed width, without colour.
    monkeypatch.setenv("COLUMNS", "140")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
