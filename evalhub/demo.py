"""The demo: the whole product on the offline toy world, from nothing to a stored, reported comparison."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from evalhub.compare import CompareRequest, CompareResult, run_compare
from evalhub.quiet import library_output_to, progress

DEMO_STEPS = 80  # the toy LoRA learns the answer format in ~50 steps and then the suffixes


def demo_adapter(toy: Path, seed: int) -> Path:
    """The toy domain's LoRA adapter, trained once and kept beside the toy world."""
    import json

    from filelock import FileLock

    manifest = json.loads((toy / "manifest.json").read_text())
    adapter = toy.parent / f"{toy.name}-adapters" / f"sft-{DEMO_STEPS}-seed{seed}"
    adapter.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(adapter) + ".lock"):  # concurrent callers train it once
        return _train_once(toy, manifest, adapter, seed)


def _train_once(toy: Path, manifest: dict, adapter: Path, seed: int) -> Path:
    from trainers._common import training_summary
    from trainers.config import toy_settings
    from trainers.sft import SFTSettings, train_sft

    if (adapter / "adapter_config.json").exists():
        print(f"evalhub demo: reusing the adapter trained earlier at {adapter}", file=sys.stderr)
        return adapter
    print("evalhub demo: training a LoRA adapter on the toy domain ...", file=sys.stderr)
    # The Trainer's logs and the libraries' bars go to a log beside the adapter; one bar and a summary stay here.
    log = Path(f"{adapter}.log")
    log.unlink(missing_ok=True)
    started = time.monotonic()
    with library_output_to(log, on_failure=progress), contextlib.redirect_stdout(sys.stderr):
        from trainers._progress import StepProgress

        # train_sft stages its output and moves it into place only on success: a killed training leaves nothing.
        # The toy config's hyperparameters (evalhub's defaults are for real models), for longer than its 60 steps.
        trained = train_sft(toy_settings(SFTSettings, "toy_sft", base=toy / manifest["base"], data=toy / manifest["sft"],
                                         output=adapter, max_steps=DEMO_STEPS, seed=seed, golden=[]),
                            callbacks=(StepProgress("sft"),))
    print(training_summary(trained, time.monotonic() - started, log), file=sys.stderr)
    return trained


def run_demo(seed: int, db: Path, report_dir: Path, backend: str = "auto") -> CompareResult:
    """Build the toy world, train a LoRA adapter on its domain, and compare it with the base."""
    import json

    from evalhub.toy import build_toy_world

    print("evalhub demo: building the toy world (cached after the first time) ...", file=sys.stderr)
    toy = build_toy_world(seed=seed)
    manifest = json.loads((toy / "manifest.json").read_text())
    adapter = demo_adapter(toy, seed)
    print("evalhub demo: judging with the offline reference judge (similarity to the ideal answer); "
          "set OPENAI_API_KEY and pass --judge openai:MODEL to `evalhub compare` for an LLM judge", file=sys.stderr)
    request = CompareRequest(
        base=str(toy / manifest["base"]), tuned=str(adapter), golden=[str(toy / manifest["golden"])], judge="reference",
        perplexity_data={"general": str(toy / manifest["heldout_general"]), "domain": str(toy / manifest["heldout_domain"])},
        tasks=[manifest["task_name"]], tasks_path=str(toy / manifest["tasks_path"]),
        training_data=str(toy / manifest["sft"]), backend=backend, kind="demo",
    )
    return run_compare(request, db=db, report_dir=report_dir)
