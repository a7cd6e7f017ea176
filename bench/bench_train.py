"""Training throughput and peak memory: LoRA vs QLoRA vs full fine-tuning, measured in one run.

Each mode trains in its own child process (so peak memory is that mode's alone) for the same steps on the
same rows of the toy world's SFT data, through `train_sft` as users run it, without validation:
  - tokens/s: tokens the trainer consumed (prompt + completion, as TRL counts them) / its train_runtime;
  - peak RSS of the child, and its growth over the RSS after the libraries were imported (what training
    itself added, loading the weights included);
  - inside the training loop (sampled after every step, so without the load-time peak): the growth of
    anonymous memory over the baseline (the model as trained, optimizer state, activations), and the
    file-backed pages (memory-mapped weights, libraries), which the kernel can drop.
Ratios are against LoRA. `--width K` trains a K-times wider copy of the toy model (random weights, same
tokenizer), where weights rather than the Python process dominate memory.

    .venv/bin/python bench/bench_train.py [--steps 30] [--threads 1] [--width 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

MODES = {"lora": {}, "qlora": {"qlora": True}, "full": {"full_finetune": True}}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _current_rss_mib() -> dict[str, float]:
    """Resident memory now, split into anonymous (heap: tensors, optimizer state) and file-backed pages
    (memory-mapped safetensors and shared libraries, which the kernel can drop and reread)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) / 1024 for name in ("RssAnon", "RssFile")}


def _worker(mode: str, base: Path, data: Path, output: Path, steps: int) -> None:
    import peft  # noqa: F401  (imports count as the baseline, not as training)
    import torch  # noqa: F401
    import trl  # noqa: F401
    from transformers import TrainerCallback

    from trainers.config import toy_settings
    from trainers.sft import SFTSettings, train_sft

    class TrainingRss(TrainerCallback):
        """Resident memory inside the training loop, after the model was loaded (and quantized)."""

        def __init__(self):
            self.samples: list[dict[str, float]] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.samples.append(_current_rss_mib())

        def on_step_end(self, args, state, control, **kwargs):
            self.samples.append(_current_rss_mib())

    baseline, anon_baseline, loop = _rss_mib(), _current_rss_mib()["RssAnon"], TrainingRss()
    # The toy config's hyperparameters: evalhub's defaults are for real models.
    out = train_sft(toy_settings(SFTSettings, base=base, data=data, output=output, max_steps=steps,
                                 validation_fraction=0, logging_steps=steps, golden=[], **MODES[mode]),
                    callbacks=(loop,))
    metrics = json.loads((out / "training.json").read_text())["metrics"]
    print(json.dumps({"mode": mode, "tokens": metrics["train_tokens"], "seconds": metrics["train_runtime_s"],
                      "peak_mib": _rss_mib(), "baseline_mib": baseline, "anon_baseline_mib": anon_baseline,
                      "loop_anon_mib": max(s["RssAnon"] for s in loop.samples),
                      "loop_file_mib": max(s["RssFile"] for s in loop.samples)}))


def _wider_base(toy_base: Path, width: int, folder: Path) -> Path:
    """The toy model with hidden and MLP sizes times `width` (random weights), beside its tokenizer."""
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(toy_base)
    config.hidden_size *= width
    config.intermediate_size *= width
    config.num_attention_heads *= width
    config.num_key_value_heads *= width
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (toy_base / name).exists():
            shutil.copy(toy_base / name, folder / name)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: see tests/train_helpers.py)")
    parser.add_argument("--width", type=int, default=1, help="train a wider copy of the toy model")
    parser.add_argument("--worker", nargs=4, metavar=("MODE", "BASE", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, base, data, out = args.worker
        _worker(mode, Path(base), Path(data), Path(out), args.steps)
        return

    from evalhub.toy import build_toy_world

    toy = build_toy_world(seed=0, quiet=True)
    manifest = json.loads((toy / "manifest.json").read_text())
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = toy / manifest["base"] if args.width == 1 else _wider_base(toy / manifest["base"], args.width,
                                                                            Path(tmp) / "wide-base")
        for mode in MODES:
            print(f"training {mode} ...", file=sys.stderr)
            child = subprocess.run(
                [sys.executable, __file__, "--steps", str(args.steps), "--worker", mode, str(base),
                 str(toy / manifest["sft"]), str(Path(tmp) / mode)],
                capture_output=True, text=True, env=env, check=False)
            if child.returncode != 0:
                sys.exit(f"{mode} failed:\n{child.stderr[-3000:]}")
            results[mode] = json.loads(child.stdout.strip().splitlines()[-1])

    lora = results["lora"]
    print(f"{args.steps} steps, batch 16, {args.threads} thread(s), width x{args.width}")
    print(f"{'mode':6} {'tokens/s':>9} {'vs LoRA':>8} {'peak RSS':>9} {'growth':>7} {'vs LoRA':>8} "
          f"{'loop anon':>10} {'vs LoRA':>8} {'loop file':>10}   (MiB)")
    for mode, r in results.items():
        speed, lora_speed = r["tokens"] / r["seconds"], lora["tokens"] / lora["seconds"]
        growth, lora_growth = r["peak_mib"] - r["baseline_mib"], lora["peak_mib"] - lora["baseline_mib"]
        anon, lora_anon = r["loop_anon_mib"] - r["anon_baseline_mib"], lora["loop_anon_mib"] - lora["anon_baseline_mib"]
        print(f"{mode:6} {speed:9.0f} {speed / lora_speed:7.2f}x {r['peak_mib']:9.0f} {growth:7.0f} "
              f"{growth / lora_growth:7.2f}x {anon:10.0f} {anon / lora_anon:7.2f}x {r['loop_file_mib']:10.0f}")


if __name__ == "__main__":
    main()
