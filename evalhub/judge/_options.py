"""How to judge: the options every judge reads (a module of its own, so the registry and the providers can
import it without importing the judge package)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from evalhub.judge._protocol_file import DEFAULT_PROTOCOL


@dataclass(frozen=True)
class JudgeOptions:
    """How to judge. Defaults suit OpenAI's and Anthropic's rate limits and a GPT-4-class judge."""

    # An OpenAI-compatible server (e.g. vLLM's) for openai:, an Anthropic-compatible one for anthropic:; None: the
    # provider's own API (or $OPENAI_BASE_URL / $ANTHROPIC_BASE_URL).
    base_url: str | None = None
    # Judge calls in flight at once. With GPT-4-class latencies (1-3 s a call) 32 is roughly 10-30 calls a
    # second, within OpenAI's per-minute request limits from tier 2 up; a lower tier's 429s are retried after
    # their Retry-After. A loopback judge answering in 100 ms does 400 calls in about 1.5-3 s (bench/).
    concurrency: int = 32
    max_cost: float | None = None        # USD; the run stops (UserError) before a call could pass it
    use_reference: bool = True           # show the judge the ideal answer
    canaries: int = 0                    # extra ideal-vs-non-answer pairs, reported apart
    seed: int = 0                        # judge sampling seed, canary choice, bootstrap
    cache_path: str | None = None        # None: $EVALHUB_CACHE/judge/replies.jsonl or ~/.cache/evalhub/judge/...
    timeout: float = 60.0                # seconds per HTTP request
    max_retries: int = 6                 # per call, on 429 / 5xx / 529 / timeouts / HTTP-200 error bodies (~25 s of backoff)
    # The most seconds one call may spend after its first attempt (waits and further attempts): it bounds a
    # judge that keeps asking to wait (Retry-After) or answers too slowly; past it the run stops.
    max_retry_seconds: float = 120.0
    retry_backoff: float = 0.5           # first wait between retries in seconds, doubling up to 8 s (Retry-After wins)
    prices: Mapping[str, Sequence[float]] | None = None  # model -> (input, output) USD per million tokens
    reasks: int = 1                      # re-asks of a reply that could not be read
    # The judge's reply budget; None: the protocol's (300 for pairwise's verdict and short reason, 2048 for
    # arena-hard, whose judge writes its own answer first).
    max_completion_tokens: int | None = None
    protocol: str = DEFAULT_PROTOCOL     # a shipped protocol's name or a protocol .toml file (--judge-protocol)
    structured_output: bool = True       # openai: send response_format (json_schema); turned off if the endpoint refuses it
    vllm_args: Mapping[str, Any] | None = None  # vllm: judge: extra vllm.LLM arguments (tensor_parallel_size, max_model_len, ...)
    rm_tie_margin: float = 0.0           # rm: judge: rewards this close or closer are a tie (0: only equal ones)
    bootstrap_resamples: int = 2000
    progress: bool = True                # a progress bar on stderr (when it is a terminal)
