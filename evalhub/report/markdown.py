"""The Markdown report and the gate summary (fit for $GITHUB_STEP_SUMMARY)."""

from __future__ import annotations


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _fence(text: str | None) -> str:
    # Model output is data: fence it with a run of backticks longer than any inside it.
    text = text or ""
    ticks = "`" * max(3, _longest_backtick_run(text) + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def _longest_backtick_run(text: str) -> int:
    longest = current = 0
    for char in text:
        current = current + 1 if char == "`" else 0
        longest = max(longest, current)
    return longest


def gate_markdown(gate, run_id: str) -> str:
    """A short table of the gate's checks (a GateResult)."""
    verdict = "passed" if gate.passed else "FAILED"
    lines = [f"### evalhub gate {verdict} (run `{run_id}`)", "", "| check | threshold | value | result |",
             "|---|---|---|---|"]
    for c in gate.checks:
        value = _fmt(c.value) + (f" ({c.detail})" if c.detail else "")
        lines.append(f"| {c.name} | {_fmt(c.threshold)} | {value} | {'pass' if c.passed else '**fail**'} |")
    return "\n".join(lines) + "\n"


def render_markdown(summary, config: dict, losses: list[dict]) -> str:
    """The run report (from a RunSummary) as Markdown."""
    out = [f"# evalhub run {summary.run_id}", "", f"- base: `{summary.base}`", f"- tuned: `{summary.tuned}`"]
    if summary.judge:
        out.append(f"- judge: `{summary.judge}` on {', '.join(f'`{g}`' for g in summary.golden or [])}")
    out += [f"- **warning**: {warning}" for warning in summary.warnings]
    stats = summary.judge_stats
    if stats:
        lo, hi = stats.win_rate_ci or (None, None)
        out += ["", "## Win rate (tuned over base)", "",
                f"**{_fmt(stats.win_rate)}** (95% CI {_fmt(lo)}–{_fmt(hi)}), sign-test p = {_fmt(stats.p_value, 4)}, "
                f"{stats.scored} of {stats.n} items scored", "",
                "| wins | losses | ties | scored | unscored | LC win rate | position consistency | parse failures | canary accuracy | judge calls | cost (USD) |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
                f"| {stats.wins} | {stats.losses} | {stats.ties} | {stats.scored} | {stats.unscored} | "
                f"{_fmt(stats.lc_win_rate)} | {_fmt(stats.position_consistency)} | {stats.parse_failures} | "
                f"{_fmt(stats.canary_accuracy)} | {stats.judge_calls} | {_fmt(stats.cost_usd, 4)} |"]
    if summary.perplexity:
        out += ["", "## Perplexity", "", "| data | base | tuned | change % | bpb base | bpb tuned |", "|---|---|---|---|---|---|"]
        for name, p in summary.perplexity.items():
            out.append(f"| {name} | {_fmt(p.base)} | {_fmt(p.tuned)} | {_fmt(p.delta_pct, 2)} | "
                       f"{_fmt(p.bpb_base, 4)} | {_fmt(p.bpb_tuned, 4)} |")
    if summary.benchmarks:
        out += ["", "## Forgetting benchmarks", "", "| task | base | tuned | delta | 95% CI | p | forgetting |",
                "|---|---|---|---|---|---|---|"]
        for task, b in summary.benchmarks.items():
            lo, hi = b.ci or (None, None)
            out.append(f"| {task} | {_fmt(b.base)} | {_fmt(b.tuned)} | {_fmt(b.delta)} | "
                       f"{_fmt(lo)}–{_fmt(hi)} | {_fmt(b.p_value, 4)} | {_fmt(b.forgetting)} |")
    if summary.gate:
        out += ["", gate_markdown(summary.gate, summary.run_id)]
    if losses:
        out += ["", "## Items the tuned model lost most clearly", ""]
        for item in losses:
            out += [f"### {item['key']}", "", "Instruction:", _fence(item["instruction"]), "Ideal answer:",
                    _fence(item["ideal"]), "Base:", _fence(item["base"]), "Tuned:", _fence(item["tuned"]),
                    "Judge: " + " / ".join(r.replace("\n", " ") for r in item["reasons"]), ""]
    out += ["", "## Settings and versions", "", _fence(_settings_text(config))]
    return "\n".join(out) + "\n"


def _settings_text(config: dict) -> str:
    import json

    return json.dumps(config, indent=2, sort_keys=True, default=str)
