"""The gate as JUnit XML: one testcase per check, so any CI shows which threshold failed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path


def write_junit(gate, path: Path, run_id: str) -> None:
    """Write `gate` (a GateResult) as a JUnit testsuite to `path`."""
    failures = sum(not c.passed for c in gate.checks)
    root = ET.Element("testsuites", name="evalhub", tests=str(len(gate.checks)), failures=str(failures))
    suite = ET.SubElement(root, "testsuite", name="evalhub-gate", tests=str(len(gate.checks)), failures=str(failures),
                       errors="0", skipped="0")
    for check in gate.checks:
        case = ET.SubElement(suite, "testcase", classname=f"evalhub.gate.{run_id}", name=check.name)
        value = "–" if check.value is None else f"{check.value:.4g}"
        text = f"value {value} against threshold {check.threshold:.4g}" + (f" ({check.detail})" if check.detail else "")
        if check.passed:
            ET.SubElement(case, "system-out").text = text
        else:
            ET.SubElement(case, "failure", message=text, type="threshold").text = text
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
