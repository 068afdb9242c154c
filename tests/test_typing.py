"""``mypy --strict`` is clean whether the ``audio`` extra (sounddevice) is installed or not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import scaled

ROOT = Path(__file__).resolve().parent.parent
DEVICE_MODULE = "deepgram_agent/audio/_device.py"  # the one place that imports sounddevice


def mypy(*args: str, pythonpath: Path | None, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    command = [sys.executable, "-m", "mypy", "--strict", "--no-incremental"]
    return subprocess.run(
        [*command, "--cache-dir", str(cache), *args, DEVICE_MODULE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(180),
        check=False,
    )


@pytest.mark.slow
def test_mypy_strict_with_and_without_sounddevice(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    # An installed package without type information, as sounddevice is: a directory on the
    # interpreter's path (mypy treats it as installed) holding a package with no py.typed.
    site = tmp_path / "site"
    (site / "sounddevice").mkdir(parents=True)
    (site / "sounddevice" / "__init__.py").write_text("def query_devices(*a, **k): ...\n")

    without_extra = mypy(pythonpath=None, cache=tmp_path / "c1")
    with_extra = mypy(pythonpath=site, cache=tmp_path / "c2")
    assert without_extra.returncode == 0, without_extra.stdout
    assert with_extra.returncode == 0, with_extra.stdout
    # Without the project's mypy settings the same set-up fails as the issue reported: the
    # fake package really does stand for an installed, untyped sounddevice.
    plain = tmp_path / "plain.ini"
    plain.write_text("[mypy]\nstrict = True\n")
    control = mypy("--config-file", str(plain), pythonpath=site, cache=tmp_path / "c3")
    assert control.returncode == 1 and "import-untyped" in control.stdout, control.stdout
