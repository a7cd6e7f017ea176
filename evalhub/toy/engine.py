"""vLLM's settings for the toy world's tiny models on a CPU host, set where the user has not set them.

They are vLLM's own environment switches (read when vLLM starts an engine), and they suit a model of a few
megabytes, never a real one; the demo and the test suite use them (bench/RESULTS.md, "vLLM engine start").
"""

from __future__ import annotations

import os

TOY_VLLM_ENV = {
    # The engine core in the calling process rather than in a spawned one that imports torch and vLLM again:
    # one engine at a time, for a model this small, starts in a third of the time.
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    # The KV cache in GiB; the default, 30% of RAM here, takes longer to allocate than the toy takes to run.
    "VLLM_CPU_KVCACHE_SPACE": "1",
}


def use_toy_vllm_settings() -> None:
    """Set the toy's vLLM switches for this process and its children, leaving any the user set alone."""
    for name, value in TOY_VLLM_ENV.items():
        os.environ.setdefault(name, value)
