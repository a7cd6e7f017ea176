"""The deployment gate: thresholds over a run summary, each becoming one pass/fail check.

Exit codes (used by `evalhub gate` and `evalhub compare --gate`): 0 every check passed, 1 a threshold
failed, 2 bad input or usage. A threshold on a stage the run did not measure is bad input, not a pass:
a gate that silently skips its checks would let anything ship.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from evalhub.errors import UserError


@dataclass(frozen=True)
class GateThresholds:
    min_win_rate: float | None = None             # judge win rate, 0..1
    min_win_rate_lower: float | None = None       # lower bound of the win rate's 95% CI
    max_forgetting: float | None = None           # largest allowed significant accuracy drop on any task (0.02 = 2 points)
    max_ppl_increase: float | None = None         # percent, on any perplexity data set
    max_parse_failure_rate: float | None = None   # share of judge calls whose reply could not be read
    min_position_consistency: float | None = None # share of items whose two orders agree

    def any(self) -> bool:
        return any(v is not None for v in asdict(self).values())

    @classmethod
    def from_sources(cls, config_file: Path | None, **flags: float | None) -> "GateThresholds":
        """Thresholds from the `[gate]` table of evalhub.toml, overridden by the flags that were given."""
        values: dict[str, float] = {}
        if config_file is not None and config_file.exists():
            try:
                table = tomllib.loads(config_file.read_text(encoding="utf-8")).get("gate", {})
            except tomllib.TOMLDecodeError as error:
                raise UserError(f"{config_file}: invalid TOML ({error}); fix the [gate] table") from None
            names = {f.name for f in fields(cls)}
            for key, value in table.items():
                name = key.replace("-", "_")
                if name not in names:
                    raise UserError(f"{config_file}: unknown gate threshold {key!r}; known: {', '.join(sorted(names))}")
                if not isinstance(value, (int, float)):
                    raise UserError(f"{config_file}: gate threshold {key!r} must be a number")
                values[name] = float(value)
        values.update({k: v for k, v in flags.items() if v is not None})
        return cls(**values)


def _need(summary: dict, key: str, flag: str, stage_flag: str):
    if key not in summary:
        raise UserError(f"--{flag} needs a run that measured it; run compare with {stage_flag}")
    return summary[key]


def evaluate_gate(summary: dict, thresholds: GateThresholds) -> dict:
    """Check `summary` (a compare `--json` summary) against `thresholds`: {"passed", "checks": [...]}."""
    if not thresholds.any():
        raise UserError("no gate thresholds given; pass e.g. --min-win-rate 0.5 or add a [gate] table to evalhub.toml")
    checks = []

    def check(name: str, threshold: float, value: float, passed: bool) -> None:
        checks.append({"name": name, "threshold": threshold, "value": value, "passed": bool(passed)})

    t = thresholds
    if t.min_win_rate is not None:
        stats = _need(summary, "judge_stats", "min-win-rate", "--golden")
        check("min_win_rate", t.min_win_rate, stats["win_rate"], stats["win_rate"] >= t.min_win_rate)
    if t.min_win_rate_lower is not None:
        lower = _need(summary, "judge_stats", "min-win-rate-lower", "--golden")["win_rate_ci"][0]
        check("min_win_rate_lower", t.min_win_rate_lower, lower, lower >= t.min_win_rate_lower)
    if t.max_forgetting is not None:
        tasks = _need(summary, "benchmarks", "max-forgetting", "--tasks")
        # Only significant drops count: a drop the paired test cannot tell from noise is not forgetting.
        drop = max([-task["delta"] for task in tasks.values() if task["forgetting"]], default=0.0)
        check("max_forgetting", t.max_forgetting, drop, drop <= t.max_forgetting)
    if t.max_ppl_increase is not None:
        sets = _need(summary, "perplexity", "max-ppl-increase", "--perplexity-data")
        increase = max(entry["delta_pct"] for entry in sets.values())
        check("max_ppl_increase", t.max_ppl_increase, increase, increase <= t.max_ppl_increase)
    if t.max_parse_failure_rate is not None:
        stats = _need(summary, "judge_stats", "max-parse-failure-rate", "--golden")
        calls = 2 * stats["n"]  # every item is judged in both orders
        rate = stats["parse_failures"] / calls if calls else 0.0
        check("max_parse_failure_rate", t.max_parse_failure_rate, rate, rate <= t.max_parse_failure_rate)
    if t.min_position_consistency is not None:
        value = _need(summary, "judge_stats", "min-position-consistency", "--golden")["position_consistency"]
        check("min_position_consistency", t.min_position_consistency, value,
              value is not None and value >= t.min_position_consistency)
    return {"passed": all(c["passed"] for c in checks), "checks": checks}
