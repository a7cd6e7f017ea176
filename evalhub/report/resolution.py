"""What a run's judge statistics can and cannot see, in one sentence: the report, the app's run page and
`evalhub compare`'s closing lines all show it."""

from __future__ import annotations


def resolution_note(stats) -> str | None:
    """E.g. "with 40 scored items (35% ties), differences under 0.17 from a tie are invisible (80% power,
    alpha 0.05); 6 items had verdicts that flipped with the answer order". None without a judged item."""
    if stats is None or not stats.scored:
        return None
    ties = stats.ties / stats.scored
    if stats.mde is None:
        parts = [f"with {stats.scored} scored items, all ties, no difference is visible"]
    else:
        parts = [f"with {stats.scored} scored items ({ties:.0%} ties), differences under {stats.mde:.2f} from a tie "
                 f"are invisible (80% power, alpha 0.05)"]
    if stats.clusters is not None:
        parts.append(f"the intervals resample {stats.clusters} clusters, not items")
    if stats.inconsistent:
        parts.append(f"{stats.inconsistent} items had verdicts that flipped with the answer order (counted as ties)")
    if stats.sequential is not None:
        seq = stats.sequential
        low, high = seq.interval
        parts.append(f"judging {'stopped early' if seq.stopped_early else 'ran to the end'} after "
                     f"{seq.items_judged} of {seq.items_total} items (anytime-valid interval [{low:.3f}, {high:.3f}])")
    return "; ".join(parts)
