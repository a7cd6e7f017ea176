"""The offline reference judge: which answer is closer to the ideal answer, by chrF (sacrebleu).

Deterministic, free and needs no API key, for demos, CI and air-gapped runs. It measures resemblance to the
ideal answer, not quality, so it is only as good as the golden set's ideal answers. It answers in the same
JSON form as an LLM judge, so its replies go through the same parser and are stored the same way.

A non-answer must never win: an answer wins only when it is clearly closer to the ideal (by MARGIN chrF
points) and itself resembles the ideal at least a little (FLOOR). Two answers that both miss are a tie; an
empty answer scores 0 and can at best tie.
"""

from __future__ import annotations

import json

from evalhub.judge._protocol import CallOutcome, PairRequest, parse_verdict

MARGIN = 2.0   # chrF points: smaller differences are noise between paraphrases
FLOOR = 20.0   # chrF below this shares little more than common letters with the ideal answer


def reference_reply(request: PairRequest) -> str:
    """The judge reply, as JSON text, for one pair; the request must carry the reference."""
    from sacrebleu import sentence_chrf

    assert request.reference is not None, "the reference judge needs the ideal answer"
    score_a = sentence_chrf(request.answer_a, [request.reference]).score if request.answer_a.strip() else 0.0
    score_b = sentence_chrf(request.answer_b, [request.reference]).score if request.answer_b.strip() else 0.0
    best = max(score_a, score_b)
    if abs(score_a - score_b) < MARGIN or best < FLOOR:
        verdict = "tie"
    else:
        verdict = "A" if score_a > score_b else "B"
    reason = f"chrF against the reference: A {score_a:.1f}, B {score_b:.1f}"
    return json.dumps({"verdict": verdict, "reason": reason})


class ReferenceJudge:
    """The reference judge behind the same interface as OpenAIJudge: no calls, no cache, no cost."""

    stop_reason = None
    http_requests = 0
    cache_hits = 0

    async def judge_pair(self, request: PairRequest) -> CallOutcome:
        reply = reference_reply(request)
        verdict = parse_verdict(reply)
        return CallOutcome(raw_reply=reply, status="ok", label=verdict.label, reason=verdict.reason)

    async def aclose(self) -> None:
        pass

    def close(self) -> None:
        pass
