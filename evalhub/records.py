"""Typed records that flow between stages. Everything is matched by id, never by position."""

from __future__ import annotations

from dataclasses import dataclass, field

# How answers are sampled: a typed contract of the compare request, stored with every generation.
from evalhub.contracts import DecodingSettings  # noqa: F401  (re-exported for the generation backends)


@dataclass(frozen=True)
class GoldenItem:
    """One prompt / ideal-answer pair of a golden set: a single request (`instruction`, optional `input`) or a
    fixed conversation ending with the user's turn (`messages`, (role, content) pairs; `instruction` is then
    its last user turn), with `output` the ideal next reply."""

    id: str
    instruction: str
    output: str
    input: str = ""
    tags: tuple[str, ...] = ()
    messages: tuple[tuple[str, str], ...] = ()
    # Items made from one source (a conversation's turns, one document's questions) share a cluster: their
    # verdicts move together, so intervals resample whole clusters (evalhub/stats/pairwise.py).
    cluster: str | None = None

    @property
    def prompt(self) -> str:
        """The request as text: the instruction, then the input after a blank line when there is one; for a
        conversation, every turn, each fenced by a marker (as the judge sees it)."""
        if self.messages:
            from evalhub.conversation import render_conversation

            return render_conversation(self.chat_messages())
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction

    def chat_messages(self) -> list[dict[str, str]]:
        """The chat messages a model is sent: the conversation, or the prompt as one user message."""
        if self.messages:
            return [{"role": role, "content": content} for role, content in self.messages]
        return [{"role": "user", "content": self.prompt}]


@dataclass(frozen=True)
class Generation:
    """One model's answer to one item; `status` is 'ok' or 'failed' (with a reason)."""

    item_id: str
    prompt: str
    output: str | None
    status: str = "ok"
    reason: str | None = None


@dataclass(frozen=True)
class ModelRef:
    """What a run compared: a base model, a LoRA adapter on it, a full model, or a served name."""

    model_id: str
    kind: str
    path: str
    base_path: str | None = None
    adapter_hash: str | None = None
    base_hash: str | None = None


@dataclass
class RunRecord:
    """Everything one run writes to the store, in one transaction."""

    run_id: str
    kind: str
    created_at: str
    base: ModelRef
    tuned: ModelRef
    config: dict
    summary: dict
    judge: str | None = None
    golden: list[str] = field(default_factory=list)
    # rows: (role, golden_file, settings dict, Generation)
    generations: list[tuple[str, str, dict, Generation]] = field(default_factory=list)
    # rows: dicts keyed by the columns of the `judgments` table (run_id is filled in)
    judgments: list[dict] = field(default_factory=list)
    # a judge panel's run: every judge's call rows, keyed by the columns of `panel_judgments`
    panel_judgments: list[dict] = field(default_factory=list)
    # rows: (stage, name, value, detail dict or None)
    metrics: list[tuple[str, str, float | None, dict | None]] = field(default_factory=list)
    # rows as dicts keyed by the columns of the store tables of the same name (run_id is filled in)
    perplexity: list[dict] = field(default_factory=list)
    benchmarks: list[dict] = field(default_factory=list)
    benchmark_items: list[dict] = field(default_factory=list)
    golden_items: list[dict] = field(default_factory=list)
    # any stage's per-item measurements: dicts keyed by the columns of `item_metrics` (run_id is filled in)
    item_metrics: list[dict] = field(default_factory=list)
