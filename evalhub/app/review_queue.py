"""What the Review page shows, without Streamlit: who is reviewing, which items to review and in what order,
which answer is "Answer 1", and what a button means from the candidate's side. The page (review_page.py) only
draws what these functions decide, so they are tested on their own (tests/test_review_page.py)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Mapping, Sequence

from evalhub.stats.human import item_verdict
from evalhub.stats.pairwise import combine_orders
from evalhub.store import HumanVote

Item = tuple[str, str]  # (golden file, item id)
JudgeVerdicts = Mapping[str, Mapping[Item, tuple[str | None, str | None]]]  # judge -> item -> (first, second)

# The headers an authenticating proxy sets to the signed-in user (nginx auth_request / oauth2-proxy), as
# docs/team.md sets it up; the first one present names the reviewer.
PROXY_HEADERS = ("X-Forwarded-User", "X-Auth-Request-User")

DISPUTED = "disputed by the judges"
AGAINST_REVIEWERS = "judges against reviewers"
SAMPLE = "random sample"
ALL = "all"
TRIAGE = (DISPUTED, AGAINST_REVIEWERS, SAMPLE, ALL)

CHOICES = {"1": "1 is better", "tie": "Tie", "2": "2 is better", "skip": "Skip"}


def proxy_user(headers: Mapping[str, str] | None) -> str | None:
    """The reviewer the proxy signed in, or None (no proxy: the page asks for a name). Header names are
    matched case-insensitively, as HTTP does."""
    found = {name.lower(): value for name, value in (headers or {}).items()}
    for name in PROXY_HEADERS:
        value = (found.get(name.lower()) or "").strip()
        if value:
            return value
    return None


def shown_first(reviewer: str, run_id: str, item: Item, pair: str = "") -> str:
    """'candidate' or 'baseline': whose answer is "Answer 1" for this reviewer on this item. Random across
    items and reviewers, but the same on every rerun and every visit (a hash, not a random draw)."""
    key = "\0".join((reviewer.strip(), run_id, pair, item[0], item[1]))
    return "candidate" if hashlib.sha256(key.encode()).digest()[0] % 2 == 0 else "baseline"


def pair_token(pair: str) -> str:
    """An arena pair's stand-in in widget keys, which reach the browser: a hash, so no model name is sent."""
    return hashlib.sha256(pair.encode()).hexdigest()[:12]


def verdict_of(choice: str, first: str) -> str | None:
    """A button pressed with `first`'s answer shown as "Answer 1", as the candidate's verdict: 'win', 'loss',
    'tie', or None for a skip."""
    if choice not in CHOICES:
        raise ValueError(f"unknown choice {choice!r}")
    if first not in ("candidate", "baseline"):
        raise ValueError(f"unknown answer order {first!r}")
    if choice == "skip":
        return None
    if choice == "tie":
        return "tie"
    return "win" if (choice == "1") == (first == "candidate") else "loss"


def judge_disputed(judges: JudgeVerdicts) -> set[Item]:
    """Items where one judge's two orders disagree, or where the judges of a panel reach different verdicts."""
    disputed = {item for orders in judges.values() for item, (a, b) in orders.items()
                if a is not None and b is not None and a != b}
    if len(judges) > 1:
        combined: dict[Item, set[str]] = {}
        for orders in judges.values():
            for item, (a, b) in orders.items():
                if (verdict := combine_orders(a, b)) is not None:
                    combined.setdefault(item, set()).add(verdict)
        disputed |= {item for item, verdicts in combined.items() if len(verdicts) > 1}
    return disputed


def reviewers_disputed(judges: JudgeVerdicts, votes: Sequence[HumanVote], reviewer: str) -> set[Item]:
    """Items where the other reviewers' verdict (their majority, as stats.human folds it) differs from a judge's
    verdict (both orders combined)."""
    others: dict[Item, list[str]] = {}
    for vote in votes:
        if vote.verdict is not None and vote.reviewer != reviewer.strip():
            others.setdefault((vote.golden_file, vote.item_id), []).append(vote.verdict)
    humans = {item: item_verdict(verdicts) for item, verdicts in others.items()}
    return {item for orders in judges.values() for item, (a, b) in orders.items()
            if item in humans and (verdict := combine_orders(a, b)) is not None and verdict != humans[item]}


@dataclass(frozen=True)
class Queue:
    selected: list[Item]   # what the triage picked, in review order
    todo: list[Item]       # of those, what this reviewer has not voted on (or skipped) yet

    @property
    def voted(self) -> int:
        return len(self.selected) - len(self.todo)


def review_queue(mode: str, items: Sequence[Item], judges: JudgeVerdicts, votes: Sequence[HumanVote],
                 reviewer: str, seed: int = 0, size: int = 20) -> Queue:
    """The items `mode` picks (one of TRIAGE) out of `items`, and which of them `reviewer` has still to vote on.
    The random sample is drawn with `seed` from the items in their stable order, so every reviewer using the
    same seed reviews the same items."""
    ordered = sorted(items)
    if mode == DISPUTED:
        picked = judge_disputed(judges)
        selected = [item for item in ordered if item in picked]
    elif mode == AGAINST_REVIEWERS:
        picked = reviewers_disputed(judges, votes, reviewer)
        selected = [item for item in ordered if item in picked]
    elif mode == SAMPLE:
        selected = random.Random(seed).sample(ordered, min(max(size, 0), len(ordered)))
    elif mode == ALL:
        selected = ordered
    else:
        raise ValueError(f"unknown triage {mode!r}")
    mine = {(v.golden_file, v.item_id) for v in votes if v.reviewer == reviewer.strip()}
    return Queue(selected=selected, todo=[item for item in selected if item not in mine])
