"""Before anything is judged: the candidate, when it is an adapter, must really change its base, under the
backend that will serve it."""

from __future__ import annotations

from typing import Callable

from evalhub.contracts import CompareRequest
from evalhub.errors import UserError
from evalhub.records import GoldenItem

Say = Callable[[str], None]

# A probe when the run has no golden item to probe with: plain text any causal LM can score.
PROBE_TEXT = "The quick brown fox jumps over the lazy dog. Then it runs into the forest and is gone."
# Log-likelihoods (nats, summed over the probe) closer than this are "the same": a trained adapter moves them
# by whole nats, and a LoRA that adds exactly zero leaves them bit-identical.
SAME_LOGPROB_NATS = 1e-4


def check_adapter_trained(request: CompareRequest) -> None:
    """Before anything loads: an adapter whose LoRA B matrices are all zero was initialised and never trained,
    and would make the tuned model equal its base. Stop with a UserError naming it."""
    from evalhub.models import inspect_model
    from evalhub.models.lora_weights import lora_b_all_zero

    if request.backend == "openai":
        return
    info = inspect_model(request.tuned)
    if info.kind == "adapter" and lora_b_all_zero(info.path):
        raise UserError(f"the adapter {info.path} was never trained: every LoRA B matrix is zero, so it adds nothing "
                        "to its base and the comparison would measure the base against itself; pass the trained "
                        "adapter folder (or train it: evalhub train sft)")


def check_adapter_applies(request: CompareRequest, items: list[GoldenItem], say: Say) -> None:
    """Before judging: the tuned model (an adapter on the base) must differ from the base under this backend.
    Score one probe (the first golden item's prompt and ideal answer) with the base and with the adapter; equal
    log-probabilities mean the backend silently serves the base for the tuned model (lm-eval #2432's failure),
    and every 'tuned' result would be the base's. Stop with a UserError naming the adapter and the fallback."""
    from evalhub.generate import backend_options
    from evalhub.models import inspect_model
    from evalhub.perplexity import measure_perplexity

    if request.backend == "openai" or inspect_model(request.tuned).kind != "adapter":
        return
    probe = f"{items[0].prompt}\n{items[0].output}" if items else PROBE_TEXT
    extra = {"adapter_base": request.adapter_base} if getattr(request, "adapter_base", None) else {}
    scores = measure_perplexity(base=request.base, tuned=request.tuned, texts=[probe], backend=request.backend,
                                options=backend_options(request.backend_options), **extra)
    base, tuned = scores["base"], scores["tuned"]
    nats = abs(base.bits_per_byte - tuned.bits_per_byte) * base.bytes * 0.6931471805599453
    if nats < SAME_LOGPROB_NATS:
        from evalhub.generate import resolve_backend

        backend = resolve_backend(request.backend, backend_options(request.backend_options))
        fallback = "--backend hf" if backend != "hf" else "--backend vllm"
        raise UserError(f"the adapter {request.tuned} has no effect under the {backend} backend: the base and the "
                        f"tuned model give a probe prompt the same log-probabilities, so the backend does not apply "
                        f"the adapter and every tuned result would be the base's; pass {fallback}")
    say(f"adapter check: the adapter changes the probe's log-likelihood by {nats:.2f} nats")
