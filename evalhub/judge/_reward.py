"""A reward model as a judge: `--judge rm:PATH` (a folder from `evalhub train rm`).

It scores each answer alone, after the item's prompt, once per run; the verdict goes to the higher reward, and
rewards within `rm_tie_margin` of each other (default 0: only equal ones) are a tie. So it is local, cheap and
deterministic, it has no position bias by construction (both orders of a pair get the same verdict), and it
never fails to parse. It does not see the ideal answer: it grades what it learned from preference pairs, as
RewardBench measures reward models. Each call's stored reply is the two rewards as JSON
({"reward_a": ..., "reward_b": ...}); `answer_rewards` reads them back per answer.

It follows the Judge interface judge_pairs drives (registry.Judge): every answer of the run is scored in
batches when the calls are planned (`check_reachable` receives them all), and each call then reads its two
rewards. The model is loaded on first use, so `check_judge` only checks the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from evalhub.errors import UserError
from evalhub.judge._protocol import CallOutcome, PairRequest

PREFIX = "rm:"


class RewardModelJudge:
    """The `rm:PATH` judge behind the same interface as the LLM judges: no cache, no cost, no parse failures."""

    structured = True   # every reply is a verdict: nothing to parse
    stop_reason = None
    cache_hits = 0

    def __init__(self, judge: str, tie_margin: float = 0.0):
        from evalhub.models.reward import check_reward_model

        if not tie_margin >= 0:
            raise UserError(f"--rm-tie-margin must be 0 or more, not {tie_margin}")
        self.judge = judge
        self.path = check_reward_model(judge[len(PREFIX):], flag=f"--judge {judge}")
        self.tie_margin = tie_margin
        self._model = None
        self._rewards: dict[tuple[str, str], float] = {}

    @property
    def calls(self) -> int:
        """Answers scored (each once, however many pairs it is in)."""
        return len(self._rewards)

    def _score(self, conversations: Sequence[tuple[str, str]]) -> None:
        missing = list(dict.fromkeys(c for c in conversations if c not in self._rewards))
        if not missing:
            return
        if self._model is None:
            from evalhub.models.reward import RewardModel

            self._model = RewardModel.load(self.path, flag=f"--judge {self.judge}")
        rewards = self._model.score([([{"role": "user", "content": prompt}], answer) for prompt, answer in missing])
        self._rewards.update(zip(missing, rewards))

    def reward(self, prompt: str, answer: str) -> float:
        self._score([(prompt, answer)])
        return self._rewards[(prompt, answer)]

    def in_flight(self, concurrency: int) -> int | None:
        return None  # no I/O: every call reads rewards scored in batches up front

    async def check_reachable(self, requests: list[PairRequest], force: bool = False) -> None:
        self._score([(r.prompt, a) for r in requests for a in (r.answer_a, r.answer_b)])

    async def judge_pair(self, request: PairRequest) -> CallOutcome:
        reward_a, reward_b = self.reward(request.prompt, request.answer_a), self.reward(request.prompt, request.answer_b)
        if abs(reward_a - reward_b) <= self.tie_margin:
            label = "tie"
        else:
            label = "A" if reward_a > reward_b else "B"
        reason = (f"reward A {reward_a:.4f}, B {reward_b:.4f}"
                  + (f" (tie margin {self.tie_margin:g})" if self.tie_margin else ""))
        return CallOutcome(raw_reply=json.dumps({"reward_a": reward_a, "reward_b": reward_b}), status="ok",
                           label=label, reason=reason)

    async def aclose(self) -> None:
        pass

    def close(self) -> None:
        self._model = None


def answer_rewards(judgments: Sequence[dict]) -> dict[str, list[float]]:
    """The reward of every answer an rm: judge scored, by side ('tuned', 'base'), from stored judgment rows
    (item_id, tuned_position, raw_reply); one reward per item and side (the order A-first)."""
    found: dict[str, dict[str, float]] = {"tuned": {}, "base": {}}
    for row in judgments:
        if row.get("is_canary") or not row.get("raw_reply") or row.get("tuned_position") != "A":
            continue
        try:
            reply = json.loads(row["raw_reply"])
        except (TypeError, json.JSONDecodeError):
            continue
        if not isinstance(reply, dict) or "reward_a" not in reply:
            continue
        found["tuned"][row["item_id"]] = float(reply["reward_a"])
        found["base"][row["item_id"]] = float(reply["reward_b"])
    return {side: [by_item[k] for k in sorted(by_item)] for side, by_item in found.items()}


def is_reward_judge(judge: str) -> bool:
    return judge.startswith(PREFIX)


def reward_model_path(judge: str) -> Path:
    return Path(judge[len(PREFIX):])
