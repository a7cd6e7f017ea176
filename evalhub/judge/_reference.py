"""The offline reference judge: which answer resembles its own item's ideal answer more, by chrF (sacrebleu).

Deterministic, free and needs no API key, for demos, CI and air-gapped runs. It measures resemblance to the
ideal answer, not quality, so it is only as good as the golden set's ideal answers. It answers in the form
the run's protocol asks of an LLM judge (a JSON verdict, or a reason ending with a bracketed token such as
[[A>B]]; never a strong verdict), so its replies go through the same parser and are stored the same way.

Raw similarity rewards what all ideal answers share: a constant reply such as "In Zorvish: ..." or "The
answer is" scores well against every item without answering any. So an answer is scored by its
*specificity*: chrF against this item's ideal answer minus its mean chrF against other items' ideal answers
(DISTRACTORS of them, chosen deterministically per item). A constant or null answer is, on average, as close
to every item's ideal as to this one's, so its specificity is about zero and it cannot come out ahead. An
answer wins only when its specificity is at least FLOOR and beats the other's by MARGIN; else it is a tie.
"""

from __future__ import annotations

import hashlib
import json
from statistics import mean
from typing import Sequence

from evalhub.judge._protocol import PAIRWISE, CallOutcome, PairRequest, parse_verdict
from evalhub.judge._protocol_file import Protocol

MARGIN = 2.0       # chrF points: smaller differences are noise between paraphrases
FLOOR = 10.0       # specificity below this is what unrelated text reaches by chance
DISTRACTORS = 16   # other items' ideal answers per item: enough for a stable mean, cheap to compute


class ReferenceJudge:
    """The reference judge behind the same Judge interface as the LLM judges: no calls, no cache, no cost."""

    judge = "reference"
    structured = False
    stop_reason = None
    calls = 0
    cache_hits = 0

    def __init__(self, references: Sequence[str], protocol: Protocol = PAIRWISE):
        self.references = list(dict.fromkeys(references))
        self.protocol = protocol
        self._scores: dict[tuple[str, str], tuple[float, float]] = {}

    def score(self, answer: str, reference: str) -> tuple[float, float]:
        """(chrF against the reference, specificity); both 0 for an empty answer."""
        key = (answer, reference)
        if key not in self._scores:
            from sacrebleu import sentence_chrf

            if not answer.strip():
                self._scores[key] = (0.0, 0.0)
            else:
                own = sentence_chrf(answer, [reference]).score
                others = self._distractors(reference)
                baseline = mean(sentence_chrf(answer, [other]).score for other in others) if others else 0.0
                self._scores[key] = (own, own - baseline)
        return self._scores[key]

    def _distractors(self, reference: str) -> list[str]:
        """The same other ideal answers for every answer to this item, in a seeded-by-content order."""
        others = [r for r in self.references if r != reference]
        others.sort(key=lambda other: hashlib.sha256(f"{reference}\0{other}".encode()).digest())
        return others[:DISTRACTORS]

    def reply(self, request: PairRequest) -> str:
        """The judge reply, as JSON text, for one pair; the request must carry the reference."""
        assert request.reference is not None, "the reference judge needs the ideal answer"
        own_a, specific_a = self.score(request.answer_a, request.reference)
        own_b, specific_b = self.score(request.answer_b, request.reference)
        if abs(specific_a - specific_b) < MARGIN or max(specific_a, specific_b) < FLOOR:
            verdict = "tie"
        else:
            verdict = "A" if specific_a > specific_b else "B"
        reason = (f"chrF against the reference: A {own_a:.1f}, B {own_b:.1f}; "
                  f"specificity (minus other items' references): A {specific_a:.1f}, B {specific_b:.1f}")
        token = next(v.token for v in sorted(self.protocol.spec.verdicts, key=lambda v: v.strong) if v.winner == verdict)
        if self.protocol.spec.parser == "json":
            return json.dumps({"verdict": token, "reason": reason})
        return f"{reason}. Verdict: [[{token}]]"


    async def judge_pair(self, request: PairRequest) -> CallOutcome:
        reply = self.reply(request)
        verdict = parse_verdict(reply, self.protocol)
        return CallOutcome(raw_reply=reply, status="ok", label=verdict.label, reason=verdict.reason, weight=verdict.weight)

    def in_flight(self, concurrency: int) -> int | None:
        return None  # no I/O: concurrency would only add overhead

    async def check_reachable(self, requests, force: bool = False) -> None:
        pass  # runs offline: nothing to reach

    async def aclose(self) -> None:
        pass

    def close(self) -> None:
        pass
