"""The blind pairwise protocol: what the judge is shown, and how its verdict is read back.

The judge sees the question, optionally the ideal answer as a reference, and two answers labelled only
"Answer A" and "Answer B" (A first). Nothing says which model wrote which. Each answer is fenced by a marker
drawn at random for every call, so an answer cannot close its own fence, and the judge is told that fenced
text is data to grade. The verdict is read from the judge's reply only.

The templates, the verdict scale and the parser are data: a protocol file (_protocol_file.py,
evalhub/judge/protocols/*.toml). The default, `pairwise`, asks for a JSON object {"verdict": "A" | "B" | "tie",
"reason": "..."} and also reads one [[A]] / [[B]] / [[C]] / [[tie]] token; `arena-hard` has the judge answer
first and end with [[A>>B]] ... [[B>>A]].
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass

from evalhub.judge._protocol_file import Protocol, load_protocol

# The default protocol (evalhub/judge/protocols/pairwise.toml); the names below are its parts, kept for callers
# that predate protocol files.
PAIRWISE = load_protocol("pairwise")
REASK = PAIRWISE.spec.reask
# Sent as `response_format` where an OpenAI-compatible endpoint supports structured output; the vllm: judge
# constrains its decoding to this schema, with the reason bounded so a reply always fits (_vllm.verdict_schema).
RESPONSE_FORMAT = PAIRWISE.response_format
# Any change to what the judge is shown or how its reply is read changes the protocol's hash, and so every
# cache key: old replies are not reused.
TEMPLATE_HASH = PAIRWISE.hash


@dataclass(frozen=True)
class PairRequest:
    """What one judge call compares: the request, the reference (None when not shown) and two answers."""

    prompt: str
    reference: str | None
    answer_a: str
    answer_b: str


@dataclass(frozen=True)
class Verdict:
    """The judge's verdict read from its reply: 'A', 'B', 'tie', or None when the reply could not be read;
    its weight in Bradley-Terry (3 for Arena-Hard's strong verdicts) and the token as the protocol names it."""

    label: str | None
    reason: str
    weight: int = 1
    token: str | None = None


@dataclass(frozen=True)
class CallOutcome:
    """One judge call (one order of one pair): the raw reply as stored, its status ('ok', 'parse_fail',
    'api_error', or 'skipped' when the run stopped before asking), the verdict label when ok, and what this
    invocation was billed for it (zero when every turn came from the cache)."""

    raw_reply: str | None
    status: str
    label: str | None
    reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    weight: int = 1               # the verdict's weight in Bradley-Terry (3 for a strong verdict)

    @classmethod
    def skipped(cls) -> "CallOutcome":
        return cls(raw_reply=None, status="skipped", label=None, reason="not asked: the run stopped")


def new_marker(request: PairRequest) -> str:
    """A random marker found in none of the texts, so no answer can forge or close its fence."""
    texts = (request.prompt, request.reference or "", request.answer_a, request.answer_b)
    while True:
        marker = secrets.token_hex(8)
        if not any(marker in text for text in texts):
            return marker


def build_messages(request: PairRequest, marker: str, protocol: Protocol | None = None) -> list[dict]:
    """The chat messages of one judge call, from the protocol's templates (the default: pairwise)."""
    spec = (protocol or PAIRWISE).spec
    reference_block = "" if request.reference is None else spec.reference_block.format(reference=request.reference,
                                                                                        marker=marker)
    system = spec.system.format(marker=marker, reference_rule=spec.reference_rule if request.reference is not None else "")
    user = spec.user.format(prompt=request.prompt, reference_block=reference_block, marker=marker,
                            answer_a=request.answer_a, answer_b=request.answer_b)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_BRACKETS = re.compile(r"\[\[([^\[\]\n]{1,24})\]\]")
_CODE_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)


def parse_verdict(reply: str | None, protocol: Protocol | None = None) -> Verdict:
    """Read the verdict from the judge's reply alone, by the protocol's parser (the default: pairwise's).

    `json`: the whole reply must be the JSON object (a Markdown code fence around it is tolerated); JSON buried
    in prose is not accepted, since it may be a quoted answer. Otherwise, as for `brackets`, exactly one
    distinct verdict token ([[A]], [[C]], [[A>>B]], ...) must appear: a reply carrying two different tokens is
    ambiguous, not read. Bracketed text that is no token of the protocol is ignored.
    """
    protocol = protocol or PAIRWISE
    if not reply or not reply.strip():
        return Verdict(None, "empty reply")
    text = reply.strip()
    if protocol.spec.parser == "json":
        fenced = _CODE_FENCE.match(text)
        candidate = fenced.group(1) if fenced else text
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            found = protocol.verdict(str(data.get("verdict", "")))
            reason = data.get("reason")
            if found is not None:
                return Verdict(found.winner, reason if isinstance(reason, str) else "", found.weight, found.token)
            return Verdict(None, f"JSON reply without a valid verdict: {str(data.get('verdict'))[:40]!r}")
    found_tokens = {}
    for written in _BRACKETS.findall(text):
        verdict = protocol.verdict(written)
        if verdict is not None:
            found_tokens[verdict.token] = verdict
    if len(found_tokens) == 1:
        (verdict,) = found_tokens.values()
        return Verdict(verdict.winner, text[-500:] if protocol.spec.parser == "brackets" else text[:500],
                       verdict.weight, verdict.token)
    if len(found_tokens) > 1:
        return Verdict(None, f"ambiguous reply: several verdict tokens {sorted(found_tokens)}")
    tokens = "/".join(f"[[{v.token}]]" for v in protocol.spec.verdicts)
    prefix = "no JSON verdict and " if protocol.spec.parser == "json" else ""
    return Verdict(None, f"{prefix}no {tokens} token in the reply")


# ---------------------------------------------------------------- multi-turn items: the conversation

# How a conversation is shown to the judge lives beside the golden item (evalhub/conversation.py), which the
# records use too; it is re-exported here for the protocol's readers.
from evalhub.conversation import CONVERSATION_NOTE, render_conversation  # noqa: E402,F401
