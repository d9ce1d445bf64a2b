"""The CUDA-marked tests, run in a subprocess and counted from its JUnit report."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path


def _junit_counts(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites)
              for k in ("tests", "failures", "errors", "skipped")}
    return {"passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed": counts["failures"], "errors": counts["errors"],
            "skipped": counts["skipped"]}


def cuda_tests(paths: list[str], *, require_passes: bool) -> dict:
    """The CUDA-marked tests (``-m "cuda and not slow"``) in a subprocess, counted from its
    JUnit report; without ``require_passes`` (dry run) all of them may be skipped."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        # a module that fails to import is counted as an error, and the CUDA tests still run
        cmd = [sys.executable, "-m", "pytest", "-m", "cuda and not slow", "-q",
               "-p", "no:cacheprovider", "--continue-on-collection-errors",
               f"--junitxml={report}", *paths]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        counts = _junit_counts(report) if report.is_file() else {}
    ok = (proc.returncode == 0 and counts.get("failed", 1) == 0 and counts.get("errors", 1) == 0
          and (counts.get("passed", 0) > 0 or not require_passes))
    out = {"ok": ok, "returncode": proc.returncode, **counts,
           "command": " ".join(cmd[1:]).replace(str(report), "<junit.xml>")}
    if not ok:
        out["output_tail"] = (proc.stdout + proc.stderr)[-3000:]
    return out
