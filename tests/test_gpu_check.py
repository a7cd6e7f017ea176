"""bench/gpu_check.py on a machine without CUDA: it stops at once with one `error:` line and exit 2, before torch
or vLLM is imported, and refuses bad arguments the same way. (Its CUDA stages run on a GPU machine; the CPU
dry run, `--allow-cpu --size tiny`, starts two vLLM engines and is run by hand.)"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"

# Runs the script as `python bench/gpu_check.py ARGS` would, then reports how it exited and which heavy
# libraries had been imported by then.
PROBE = """
import json, runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
code = None
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "imported": sorted(m for m in ("torch", "vllm", "transformers") if m in sys.modules)}))
"""


def _script():
    if "gpu_check" in sys.modules:
        return sys.modules["gpu_check"]
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> tuple[dict, str, str]:
    done = subprocess.run([sys.executable, "-c", PROBE, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120)
    *printed, last = done.stdout.strip().splitlines() or [""]
    return json.loads(last), "\n".join(printed), done.stderr


@pytest.fixture(scope="module")
def no_cuda():
    reason = _script().no_cuda_reason()
    if reason is None:
        pytest.skip("this machine looks ready for CUDA: the check would run its stages")
    return reason


def test_without_cuda_exits_2_with_one_line_before_heavy_imports(no_cuda):
    outcome, stdout, stderr = _run()
    assert outcome["code"] == 2
    assert outcome["imported"] == []  # neither torch nor vLLM (nor transformers) was imported to find out
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"error: {no_cuda}"
    assert "Traceback" not in stderr and stdout == ""


def test_the_reason_names_the_fix(no_cuda):
    assert "pip install" in no_cuda or "--allow-cpu" in no_cuda


@pytest.mark.parametrize("args, says", [
    (("--size", "13b"), "invalid choice: '13b'"),
    (("--allow-cpu", "--size", "7b"), "--allow-cpu runs the tiny shape only"),
    (("--items", "0"), "--items must be 1-100"),
    (("--max-new-tokens", "4096"), "--max-new-tokens must be at most"),
])
def test_bad_arguments_exit_2_with_one_line(args, says):
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0]
    assert done.stdout == ""


def test_each_size_has_a_shape_and_the_default_fits_its_budget():
    script = _script()
    assert script.parse_args([]).size == "1b"
    assert script.parse_args(["--allow-cpu"]).size == "tiny"
    quick = script.parse_args(["--quick"])
    assert (quick.items, quick.max_new_tokens) == script.QUICK[:2]
    # The default's stage budgets leave room for the install within the 8 minutes; 7b's say they do not.
    assert sum(script.BUDGET_S["1b"].values()) <= script.GOAL_S - 60
    assert sum(script.BUDGET_S["7b"].values()) > sum(script.BUDGET_S["1b"].values())
