"""The demo: the whole product on the offline toy world, from nothing to a stored, reported comparison."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from evalhub.compare import CompareRequest, CompareResult, run_compare
from evalhub.errors import UserError
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

    from evalhub.toy.engine import use_toy_vllm_settings

    use_toy_vllm_settings()  # the toy's engine starts in seconds (evalhub/toy/engine.py)
    print("evalhub demo: building the toy world (cached after the first time) ...", file=sys.stderr)
    toy = _toy_world_while_loading(seed, backend)
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


def _toy_world_while_loading(seed: int, backend: str) -> Path:
    """The toy world, built in a child process while this one loads what the demo's later steps need.

    The build pretrains a tiny model on one thread (evalhub/toy/families.py, pretrain_threads), for most of a
    minute; on a second core, this process meanwhile imports the training libraries and vLLM, and does what
    vLLM's first engine on a machine spends half a minute on (evalhub/models/vllm_engine.py,
    prepare_first_engine). A cold demo is shorter by about that much.
    """
    import os
    import subprocess

    from evalhub.toy import build_toy_world, cached_toy_world

    log = _loading_log()
    if cached_toy_world(seed) is not None or (os.cpu_count() or 1) < 2 or not _can_create(log.parent):
        return build_toy_world(seed=seed)  # which says why, when the cache folder cannot be made
    # The child's progress bar goes to the terminal; its errors are evalhub's own one-line ones (exit 2).
    child = subprocess.Popen([sys.executable, "-m", "evalhub", "toy", "build", "--seed", str(seed)],
                             stdout=subprocess.DEVNULL)
    try:
        _load_later_steps(backend, log)
    except BaseException as error:
        _stop(child, interrupted=isinstance(error, KeyboardInterrupt))
        raise
    if child.wait() < 0:
        raise UserError(f"the toy world's build was stopped by signal {-child.returncode}; run the demo again")
    if child.returncode != 0:
        raise SystemExit(child.returncode)  # the child has said why, in one line
    return build_toy_world(seed=seed)


def _stop(child, interrupted: bool) -> None:
    """Stop the build, which then removes its staging folder. A Ctrl+C reached it too (one process group): it
    gets a moment to stop by itself first, since a second SIGINT would cut its cleanup short."""
    import signal
    import subprocess

    if interrupted:
        try:
            child.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            pass
    child.send_signal(signal.SIGINT)
    child.wait()


def _can_create(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return True


def _loading_log() -> Path:
    """Where the libraries' output goes while the demo loads them."""
    from evalhub.toy import default_cache_dir

    return default_cache_dir() / "demo-libraries.log"


def _load_later_steps(backend: str, log: Path) -> None:
    """Import the LoRA training's libraries, lm-eval and the comparison's engine, with their import-time chatter
    in `log`."""
    from evalhub.generate import resolve_backend
    from evalhub.toy.families import DEFAULT_FAMILY, family

    log.unlink(missing_ok=True)
    with library_output_to(log, on_failure=progress):
        import datasets  # noqa: F401  (each imported for its import time: the LoRA's training, the benchmarks)
        import lm_eval.evaluator  # noqa: F401
        import peft  # noqa: F401
        import trl  # noqa: F401

        if resolve_backend(backend) == "vllm":
            from evalhub.models.vllm_engine import prepare_first_engine

            prepare_first_engine(family(DEFAULT_FAMILY).model_class)
