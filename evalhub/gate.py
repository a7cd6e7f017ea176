"""The deployment gate: thresholds over a run summary, each becoming one pass/fail check.

Exit codes (used by `evalhub gate` and `evalhub compare --gate`): 0 every check passed, 1 a threshold
failed, 2 bad input or usage. A threshold on a stage the run did not measure is bad input, not a pass:
a gate that silently skips its checks would let anything ship. A stage that ran but could measure nothing
(no item scored) fails its check, saying so.

A win rate is only evidence when the judge looked at the answers. Every win-rate check therefore also needs,
by default and without a flag:
- position consistency (the share of items whose two orders agree) of at least POSITION_CONSISTENCY_FLOOR.
  A judge that follows the answer order scores 0 and yields a win rate of exactly 0.5 with a zero-width
  interval, which would pass a non-inferiority gate; a coin-flip judge agrees with itself half the time
  (1/3 with three verdicts). 0.60 lies above both, and just below the 65% consistency GPT-4 reached on
  MT-Bench pairs in "Judging LLM-as-a-Judge" (Zheng et al. 2023, table 2), whose weaker judges (GPT-3.5 46%,
  Claude-v1 24%) it would refuse. --min-position-consistency overrides it.
- a share of scored items of at least SCORED_FLOOR: a win rate over the few items the judge could read is a
  win rate over a sample the failures chose. --min-scored overrides it.
With `--sequential`, the win-rate checks decide on the run's anytime-valid confidence sequence.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from evalhub.contracts import GateCheck, GateResult, GateThresholds, RunSummary, build
from evalhub.errors import UserError

__all__ = ["GateThresholds", "POSITION_CONSISTENCY_FLOOR", "SCORED_FLOOR", "evaluate_gate", "load_thresholds"]

POSITION_CONSISTENCY_FLOOR = 0.60
SCORED_FLOOR = 0.80
MIN_HUMAN_VOTES = 30  # --min-human-votes' default


def load_thresholds(config_file: Path | None, **flags: float | None) -> GateThresholds:
    """Thresholds from the `[gate]` table of evalhub.toml, overridden by the flags that were given."""
    values: dict[str, object] = {}
    if config_file is not None and config_file.exists():
        if not config_file.is_file():
            raise UserError(f"--config {config_file}: is a folder; pass an evalhub.toml file")
        try:
            table = tomllib.loads(config_file.read_text(encoding="utf-8")).get("gate", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"{config_file}: invalid TOML ({error}); fix the [gate] table") from None
        names = set(GateThresholds.model_fields)
        for key, value in table.items():
            name = key.replace("-", "_")
            if name not in names:
                raise UserError(f"{config_file}: unknown gate threshold {key!r}; known: {', '.join(sorted(names))}")
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise UserError(f"{config_file}: gate threshold {key!r} must be a number")
            values[name] = float(value)
    values.update({k: v for k, v in flags.items() if v is not None})
    return build(GateThresholds, **values)


def _decided(interval, threshold: float) -> bool:
    return interval[0] >= threshold or interval[1] < threshold


def _sequential_detail(stats) -> str:
    seq = stats.sequential
    low, high = seq.interval
    how = "stopped early" if seq.stopped_early else "every item judged"
    return f"anytime-valid interval [{low:.3f}, {high:.3f}] after {seq.items_judged} of {seq.items_total} items ({how})"


def _uninformative(check, stats, thresholds: GateThresholds) -> None:
    """Fail a win-rate check whose judge carried too little information, saying what was missing."""
    reason = information_missing(stats, thresholds)
    if reason is not None and check.value is not None:  # without a value the check already fails, saying why
        check.passed = False
        check.detail = reason if not check.detail else f"{reason}; {check.detail}"


def information_missing(stats, thresholds: GateThresholds) -> str | None:
    """Why the judge's win rate is no evidence (too few items scored, verdicts that follow the answer order),
    or None when it is."""
    scored_floor = SCORED_FLOOR if thresholds.min_scored is None else thresholds.min_scored
    if stats.n == 0 or stats.scored / stats.n < scored_floor:
        share = stats.scored / stats.n if stats.n else 0.0
        return (f"{stats.scored} of {stats.n} items scored ({share:.2f} < {scored_floor:.2f}): the win rate is over "
                f"the items the judge could read, not the golden set (--min-scored overrides)")
    floor = POSITION_CONSISTENCY_FLOOR if thresholds.min_position_consistency is None \
        else thresholds.min_position_consistency
    if floor > 0 and stats.position_consistency is None:
        return ("no item with two different answers got verdicts in both orders: the judge's position consistency "
                "is unknown, so its win rate says nothing (--min-position-consistency 0 overrides)")
    if stats.position_consistency is not None and stats.position_consistency < floor:
        return (f"position consistency {stats.position_consistency:.2f} < {floor:.2f}: the judge's verdicts follow "
                f"the answer order, not the answers")
    return None


def _need(part, flag: str, stage_flag: str):
    if part is None:
        raise UserError(f"--{flag} needs a run that measured it; run compare with {stage_flag}")
    return part


def evaluate_gate(summary: RunSummary, thresholds: GateThresholds, human: dict | None = None) -> GateResult:
    """Check `summary` against `thresholds`; every threshold given becomes one check. `human`: the run's
    human-vote statistics (evalhub.human.human_summary), None when nobody voted on it."""
    if not thresholds.any():
        raise UserError("no gate thresholds given; pass e.g. --min-win-rate 0.5 or add a [gate] table to evalhub.toml")
    checks: list[GateCheck] = []

    def check(name: str, threshold: float, value: float | None, passed: bool | None, detail: str | None = None) -> None:
        checks.append(GateCheck(name=name, threshold=threshold, value=value, passed=bool(passed) and value is not None,
                                detail=detail))

    t = thresholds
    stats = summary.judge_stats
    nothing_scored = None if stats is None else f"{stats.scored} of {stats.n} items scored"
    if t.min_win_rate is not None:
        stats = _need(stats, "min-win-rate", "--golden")
        value = stats.win_rate
        passed, detail = value is not None and value >= t.min_win_rate, nothing_scored if value is None else None
        if stats.sequential is not None and _decided(stats.sequential.interval, t.min_win_rate):
            passed, detail = stats.sequential.interval[0] >= t.min_win_rate, _sequential_detail(stats)
        check("min_win_rate", t.min_win_rate, value, passed, detail)
        _uninformative(checks[-1], stats, t)
    if t.min_win_rate_lower is not None:
        stats = _need(stats, "min-win-rate-lower", "--golden")
        lower = stats.win_rate_ci[0] if stats.win_rate_ci else None
        detail = f"no confidence interval ({nothing_scored})" if lower is None else None
        if stats.sequential is not None:  # the anytime-valid interval: the bootstrap's is not valid after looks
            lower, detail = stats.sequential.interval[0], _sequential_detail(stats)
        check("min_win_rate_lower", t.min_win_rate_lower, lower, lower is not None and lower >= t.min_win_rate_lower,
              detail)
        _uninformative(checks[-1], stats, t)
    if t.max_forgetting is not None:
        tasks = _need(summary.benchmarks, "max-forgetting", "--tasks")
        unmeasured = [name for name, task in tasks.items() if task.delta is None]
        # Only significant drops count: a drop the paired test cannot tell from noise is not forgetting.
        drop = max([-task.delta for task in tasks.values() if task.forgetting and task.delta is not None], default=0.0)
        value = None if unmeasured else drop
        check("max_forgetting", t.max_forgetting, value, value is not None and drop <= t.max_forgetting,
              f"no items scored on {', '.join(unmeasured)}" if unmeasured else None)
    if t.max_ppl_increase is not None:
        sets = _need(summary.perplexity, "max-ppl-increase", "--perplexity-data")
        increases = [entry.delta_pct for entry in sets.values()]
        value = None if not increases or any(i is None for i in increases) else max(increases)
        check("max_ppl_increase", t.max_ppl_increase, value, value is not None and value <= t.max_ppl_increase,
              "perplexity could not be measured" if value is None else None)
    if t.max_parse_failure_rate is not None:
        stats = _need(stats, "max-parse-failure-rate", "--golden")
        rate = stats.parse_failure_rate()  # a panel's: pooled over its judges' calls
        detail = "no judge calls" if rate is None else None
        if rate is not None and stats.judges:
            detail = "pooled over the panel; per judge: " + ", ".join(
                f"{name} {one.parse_failures}/{2 * one.n}" for name, one in stats.judges.items())
        check("max_parse_failure_rate", t.max_parse_failure_rate, rate,
              rate is not None and rate <= t.max_parse_failure_rate, detail)
    if t.min_position_consistency is not None:
        value = _need(stats, "min-position-consistency", "--golden").position_consistency
        check("min_position_consistency", t.min_position_consistency, value,
              value is not None and value >= t.min_position_consistency,
              f"no item has verdicts in both orders ({nothing_scored})" if value is None else None)
    if t.min_judge_agreement is not None:
        stats = _need(stats, "min-judge-agreement", "--golden")
        agreement = stats.judge_agreement
        value = agreement.kappa if agreement is not None else None
        if stats.judges is None:
            detail = "one judge: no agreement between judges to measure; run a panel (--judge given twice or more)"
        elif value is None:
            detail = f"kappa undefined over the {agreement.n if agreement else 0} items every judge scored"
        else:
            detail = None
        check("min_judge_agreement", t.min_judge_agreement, value, value is not None and value >= t.min_judge_agreement,
              detail)
    on_votes = _human_checks(summary, t, human, check)
    if t.min_judge_human_agreement is not None and not on_votes:
        stats = _need(stats, "min-judge-human-agreement", "--golden")
        judges = list(stats.judges) if stats.judges else [summary.judge or "the judge"]
        calibrations = stats.calibration or {}
        missing = [j for j in judges if j not in calibrations or calibrations[j].kappa is None]
        value = None if missing else min(calibrations[j].kappa for j in judges)
        protocol = stats.protocol.name if stats.protocol else "pairwise"
        check("min_judge_human_agreement", t.min_judge_human_agreement, value,
              value is not None and value >= t.min_judge_human_agreement,
              f"no calibration of {', '.join(missing)} with the {protocol} protocol; run `evalhub judge calibrate "
              f"judge_calibration --judge {missing[0]}` first ({_fallback(human, t)})" if missing else
              f"from the calibration file ({_fallback(human, t)})")
    return GateResult(passed=all(c.passed for c in checks), checks=checks)


def _votes_seen(human: dict | None) -> int:
    return human["n_votes"] if human else 0


def _fallback(human: dict | None, t: GateThresholds) -> str:
    return (f"{_votes_seen(human)} human votes on the run, fewer than --min-human-votes "
            f"{t.min_human_votes or MIN_HUMAN_VOTES}")


def _human_checks(summary: RunSummary, t: GateThresholds, human: dict | None, check) -> bool:
    """The checks on blind human votes: --min-human-win-rate, and --min-judge-human-agreement on the run's own
    votes when it has at least --min-human-votes of them (then True: the calibration file is not consulted).
    The judge's kappa with the reviewers is over the items both scored (evalhub/stats/human.py)."""
    needed = t.min_human_votes or MIN_HUMAN_VOTES
    if t.min_human_win_rate is not None:
        value = human["win_rate"] if human else None
        check("min_human_win_rate", t.min_human_win_rate, value, value is not None and value >= t.min_human_win_rate,
              "no human votes on this run; vote on the app's Review page or `evalhub review import VOTES.jsonl`"
              if value is None else f"{human['n_items']} items voted by {len(human['reviewers'])} reviewers")
    if t.min_judge_human_agreement is None or _votes_seen(human) < needed:
        return False
    agreement = human["judge_agreement"]
    judges = sorted(agreement)
    undefined = [j for j in judges if agreement[j]["kappa"] is None]
    value = None if undefined or not judges else min(agreement[j]["kappa"] for j in judges)
    per_judge = ", ".join(f"{j} kappa {agreement[j]['kappa']} over {agreement[j]['n']} items" for j in judges)
    check("min_judge_human_agreement", t.min_judge_human_agreement, value,
          value is not None and value >= t.min_judge_human_agreement,
          f"from the run's own {human['n_votes']} human votes (at least --min-human-votes {needed}): "
          + (per_judge or "no judge verdicts on the voted items"))
    return True
