"""Smoke test of ``benchmarks/run.py --quick``: it runs, checks its peers and reports every workload.

No timing is asserted (the numbers depend on the machine); only that the
script exits 0 (every peer's output matched convcli's), prints a table row
for each workload W1–W8 whatever peers are installed, and writes its
report to ``--output``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "run.py"
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8")


def test_quick_benchmark_reports_every_workload(tmp_path: Path) -> None:
    output = tmp_path / "r.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for key in WORKLOADS:
        assert re.search(rf"^\| {key}\b", result.stdout, flags=re.M), f"no table row for {key}"
    assert "MISMATCH" not in result.stdout
    assert "start-up" in result.stdout
    assert output.read_text(encoding="utf-8") == result.stdout
