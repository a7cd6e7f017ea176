"""The items the tuned model lost most clearly: both orders said the base answer was better."""

from __future__ import annotations


def clearest_losses(judgments: list[dict], answers: dict[str, dict[str, dict]], limit: int = 10) -> list[dict]:
    """Items lost in both orders, side by side.

    `answers` maps "golden_file::item_id" to {"instruction", "ideal", "base", "tuned"}.
    """
    by_item: dict[str, list[dict]] = {}
    for j in judgments:
        if not j.get("is_canary"):
            by_item.setdefault(f"{j['golden_file']}::{j['item_id']}", []).append(j)
    lost = []
    for key, calls in sorted(by_item.items()):
        if len(calls) == 2 and all(c["status"] == "ok" and c["verdict"] == "loss" for c in calls) and key in answers:
            reasons = [c.get("reason") or "" for c in calls]
            lost.append({"key": key, **answers[key], "reasons": reasons})
    return lost[:limit]
