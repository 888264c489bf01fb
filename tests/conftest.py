from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


# The pre-2017 V1 format is refused with a message saying what it is (test_fixtures.py checks that).
UNREADABLE = {"tf1_v1_format"}


# What a user passes for a setting that no file of a fixture says: tf1_forget0_no_meta is a
# BasicLSTMCell(forget_bias=0.0) saved without its .meta, so only --forget-bias 0 makes it right.
SAID_BY_THE_USER = {"tf1_forget0_no_meta": {"forget_bias": 0.0}}


def sigint_by_default() -> None:
    """preexec_fn of a child a test sends SIGINT: Ctrl-C's default disposition, which a shell gives
    a foreground command. A test run started in the background of a non-interactive shell
    (`pytest &`) ignores SIGINT, and its children, Python among them, would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def load_options(entry: dict) -> dict:
    """lstm_inspect.load's keyword arguments for a manifest entry (SAID_BY_THE_USER)."""
    return dict(SAID_BY_THE_USER.get(entry["name"], {}))


def no_recurrent_layers(directory: Path) -> Path:
    """An .npz holding a dense layer only: a file with neither an LSTM nor a GRU."""
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dense.npz"
    np.savez(path, **{"dense/kernel": np.ones((12, 4), np.float32), "dense/bias": np.zeros(4, np.float32)})
    return path


def manifest(readable_only: bool = True) -> list[dict]:
    entries = json.loads((FIXTURES / "manifest.json").read_text())["fixtures"]
    return [e for e in entries if not (readable_only and e["name"] in UNREADABLE)]


@pytest.fixture(autouse=True)
def _fixed_terminal(monkeypatch):
    # Rich sizes tables from COLUMNS; golden outputs are rendered at a fixed width, without colour.
    monkeypatch.setenv("COLUMNS", "140")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
