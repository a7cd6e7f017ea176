"""The perplexity stage: both models' perplexity and bits per byte on each held-out text."""

from __future__ import annotations

from dataclasses import asdict

from pydantic import BaseModel

from evalhub.contracts import PerplexityDelta, RunSummary
from evalhub.records import RunRecord
from evalhub.stages._stage import Results, RunContext


class PerplexityScore(BaseModel):
    perplexity: float
    bits_per_byte: float
    tokens: int
    bytes: int


class PerplexityResult(BaseModel):
    datasets: dict[str, dict[str, PerplexityScore]]  # --perplexity-data NAME -> role -> score


class PerplexityStage:
    name = "perplexity"
    own_models = False

    def wanted(self, context: RunContext) -> bool:
        return bool(context.perplexity_texts)

    def run(self, context: RunContext, results: Results) -> PerplexityResult:
        return context.checkpoint(self.name, PerplexityResult, lambda: self._measure(context))

    def _measure(self, context: RunContext) -> PerplexityResult:
        from evalhub.generate import backend_options
        from evalhub.perplexity import measure_perplexity

        request = context.request
        window = {k: v for k, v in (("window", request.perplexity_window), ("stride", request.perplexity_stride)) if v}
        return PerplexityResult(datasets={
            name: {role: PerplexityScore(**asdict(score)) for role, score in
                   measure_perplexity(base=request.base, tuned=request.tuned, texts=texts, backend=request.backend,
                                      options=backend_options(request.backend_options),
                                      adapter_base=request.adapter_base, **window).items()}
            for name, texts in context.perplexity_texts.items()})

    def summarize(self, result: PerplexityResult, summary: RunSummary, context: RunContext) -> None:
        summary.perplexity = {
            name: PerplexityDelta(base=roles["base"].perplexity, tuned=roles["tuned"].perplexity,
                                  delta_pct=_delta_pct(roles["base"].perplexity, roles["tuned"].perplexity),
                                  bpb_base=roles["base"].bits_per_byte, bpb_tuned=roles["tuned"].bits_per_byte)
            for name, roles in result.datasets.items()}

    def store_rows(self, result: PerplexityResult, record: RunRecord, context: RunContext) -> None:
        record.perplexity = [{"dataset": name, "role": role, **score.model_dump(),
                              "settings": {"backend": context.request.backend}}
                             for name, roles in result.datasets.items() for role, score in roles.items()]


def _delta_pct(base: float, tuned: float) -> float | None:
    return 100.0 * (tuned - base) / base if base else None
