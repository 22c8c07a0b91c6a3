"""Shared test configuration: hypothesis profiles, optional torch, the ``locked_dir`` fixture."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Subprocesses started by the tests (convcli, scripts) must not inherit PYTHONUNBUFFERED:
# this machine sets it, and it hides a missing flush (a closed reader then gives exit 120 and
# "Exception ignored ... BrokenPipeError" instead of a quiet exit 1). Removing it here, before
# any test runs, covers every subprocess.run/Popen that inherits os.environ or copies it.
os.environ.pop("PYTHONUNBUFFERED", None)

settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", deadline=None, max_examples=60, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def locked_dir(tmp_path: Path) -> Iterator[Path]:
    """An existing directory without write permission (mode 0o500), writable again afterwards.

    Skips the test when run as root (root ignores directory permissions).
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        yield locked
    finally:
        locked.chmod(0o700)
