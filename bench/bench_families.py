"""Per model family: toy-world build time, generation speed through vLLM and transformers, and how closely the
two backends' perplexities agree, measured in one run on this machine.

For each family (evalhub/toy/families.py):
  - build: `build_toy_world(arch=...)` into a fresh folder (the whole build: tokenizer, pretraining, the
    multiple-choice check); `--cached` reuses the cached world and leaves the build time out;
  - generation: the base model answers the first 32 golden items greedily (max 32 new tokens) after one
    warm-up call on the same loaded model, through vLLM's CPU engine and through transformers (batch 16);
    tokens/s = generated tokens (re-tokenized answers) / wall time of the timed call;
  - perplexity: the held-out general text through both backends; the ratio vllm / hf (1.000 = equal).

    .venv/bin/python bench/bench_families.py [--archs llama,qwen2,...] [--cached | --build-only]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ITEMS, NEW_TOKENS = 32, 32


def _generation_tokens_per_s(base: Path, items, backend: str, options) -> float:
    from evalhub.generate import generate_answers, keep_models_loaded
    from evalhub.models import load_tokenizer
    from evalhub.records import DecodingSettings

    settings = DecodingSettings(max_new_tokens=NEW_TOKENS)
    tokenizer = load_tokenizer(base)
    with keep_models_loaded():
        generate_answers(base, None, items[:1], settings, backend=backend, options=options)  # load and warm up
        start = time.perf_counter()
        answers = generate_answers(base, None, items, settings, backend=backend, options=options)
        seconds = time.perf_counter() - start
    tokens = sum(len(tokenizer(g.output or "", add_special_tokens=False).input_ids) + 1 for g in answers["base"].values())
    return tokens / seconds


def build_seconds(arch: str) -> float:
    from evalhub.toy import build_toy_world

    world = Path(tempfile.mkdtemp(prefix=f"bench-{arch}-")) / "world"
    start = time.perf_counter()
    build_toy_world(seed=0, out=world, quiet=True, arch=arch)
    return round(time.perf_counter() - start, 1)


def measure(arch: str, cached: bool) -> dict:
    from evalhub.generate import BackendOptions
    from evalhub.golden import load_golden
    from evalhub.perplexity import load_texts, measure_perplexity
    from evalhub.toy import build_toy_world

    row: dict = {"arch": arch}
    if cached:
        world = build_toy_world(seed=0, quiet=True, arch=arch)
    else:
        world = Path(tempfile.mkdtemp(prefix=f"bench-{arch}-")) / "world"
        start = time.perf_counter()
        build_toy_world(seed=0, out=world, quiet=True, arch=arch)
        row["build_s"] = round(time.perf_counter() - start, 1)
    manifest = json.loads((world / "manifest.json").read_text())
    base = world / manifest["base"]
    row["base_general_accuracy"] = manifest["base_general_accuracy"]
    items = load_golden(world / manifest["golden"])[:ITEMS]
    texts = load_texts(world / manifest["heldout_general"])
    vllm_options = BackendOptions(kv_cache_gib=0.25, batch_size=16)
    hf_options = BackendOptions(batch_size=16)
    row["hf_tok_s"] = round(_generation_tokens_per_s(base, items, "hf", hf_options), 1)
    row["vllm_tok_s"] = round(_generation_tokens_per_s(base, items, "vllm", vllm_options), 1)
    hf = measure_perplexity(base, None, texts, backend="hf", options=hf_options)["base"].perplexity
    vllm = measure_perplexity(base, None, texts, backend="vllm", options=vllm_options)["base"].perplexity
    row["perplexity_hf"], row["perplexity_vllm"], row["ppl_ratio"] = round(hf, 4), round(vllm, 4), round(vllm / hf, 5)
    return row


def main() -> None:
    from evalhub.toy.families import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default=",".join(FAMILIES))
    parser.add_argument("--cached", action="store_true", help="reuse the cached worlds (no build time)")
    parser.add_argument("--build-only", action="store_true", help="only the build time of each family")
    args = parser.parse_args()
    if args.build_only:
        for arch in args.archs.split(","):
            print(f"{arch}: build {build_seconds(arch)} s", flush=True)
        return
    print("| family | build (s) | MC accuracy | vllm gen tok/s | hf gen tok/s | ppl vllm / hf |", flush=True)
    print("|---|---|---|---|---|---|", flush=True)
    for arch in args.archs.split(","):
        row = measure(arch, args.cached)
        print(json.dumps(row), file=sys.stderr, flush=True)
        print(f"| {arch} | {row.get('build_s', '–')} | {row['base_general_accuracy']:.3f} | {row['vllm_tok_s']} | "
              f"{row['hf_tok_s']} | {row['ppl_ratio']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
