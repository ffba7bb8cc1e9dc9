"""Lint rules the package holds to, checked with the project's ruff configuration (pyproject.toml).

SLF001: no module of ``segengine/`` reaches into another object's private members; the
operations (snapshot, reload, explain, retention) use the public API of
:class:`segengine.runtime.core.EngineCore` and of its parts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_the_package_is_clean():
    result = _ruff("segengine")
    assert result.returncode == 0, result.stdout + result.stderr


def test_private_access_is_reported():
    """The configuration does select SLF001 for the package (so the check above can fail)."""
    result = _ruff("--stdin-filename", "segengine/ops/example.py", "-", stdin="def f(engine):\n    return engine._store\n")
    assert result.returncode == 1
    assert "SLF001" in result.stdout
