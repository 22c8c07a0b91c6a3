"""Shared test configuration: hypothesis profiles and optional torch."""

from __future__ import annotations

import os

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
