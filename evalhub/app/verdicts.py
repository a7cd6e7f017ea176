"""One outcome per judged item: the item's two judge calls (tuned answer shown first, then second) folded
together exactly as the run's own statistics fold them (`evalhub.stats.pairwise.combine_orders`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from evalhub.stats.pairwise import combine_orders
from evalhub.store import StoredJudgment


@dataclass(frozen=True)
class ItemVerdict:
    """`outcome` is 'win', 'tie' or 'loss' from the tuned model's side, or None when an order gave no
    verdict (the item is then unscored, as in the run's statistics)."""

    run_id: str
    golden_file: str
    item_id: str
    tuned_first: str | None      # verdict with the tuned answer shown as "Answer A"
    tuned_second: str | None     # verdict with the tuned answer shown as "Answer B"
    outcome: str | None
    parse_failed: bool           # at least one of the judge's replies could not be read
    judgments: tuple[StoredJudgment, ...]


def _verdict(calls: list[StoredJudgment], position: str) -> str | None:
    return next((j.verdict for j in calls if j.tuned_position == position and j.status == "ok"), None)


def item_verdicts(judgments: list[StoredJudgment]) -> list[ItemVerdict]:
    """Fold each item's judge calls into one verdict per (run, golden file, item id). Canaries, which test
    the judge rather than the models, are left out."""
    calls: dict[tuple[str, str, str], list[StoredJudgment]] = defaultdict(list)
    for judgment in judgments:
        if not judgment.is_canary:
            calls[(judgment.run_id, judgment.golden_file, judgment.item_id)].append(judgment)
    verdicts = []
    for (run_id, golden_file, item_id), item_calls in calls.items():
        first, second = _verdict(item_calls, "A"), _verdict(item_calls, "B")
        verdicts.append(ItemVerdict(run_id=run_id, golden_file=golden_file, item_id=item_id, tuned_first=first,
                                    tuned_second=second, outcome=combine_orders(first, second),
                                    parse_failed=any(j.status == "parse_fail" for j in item_calls),
                                    judgments=tuple(sorted(item_calls, key=lambda j: j.tuned_position))))
    return verdicts
