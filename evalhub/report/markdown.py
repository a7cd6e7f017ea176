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
        from evalhub.report.resolution import resolution_note

        if (note := resolution_note(stats)) is not None:
            out += ["", f"What this run can see: {note}."]
        out += judging_markdown(stats)
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
    if summary.answer_metrics:  # any per-answer metric: the same columns, whatever it measures
        out += ["", "## Answer metrics", "", "| metric | items | base | tuned | delta | 95% CI | p |",
                "|---|---|---|---|---|---|---|"]
        for name, m in summary.answer_metrics.items():
            lo, hi = m.ci or (None, None)
            out.append(f"| {name} | {m.n} | {_fmt(m.base)} | {_fmt(m.tuned)} | {_fmt(m.delta)} | {_fmt(lo)}–{_fmt(hi)} "
                       f"| {_fmt(m.p_value, 4)} |")
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


def judging_markdown(stats) -> list[str]:
    """The protocol, style control, a panel's judges and agreement, calibrations and the breakdown by tag."""
    out = [""]
    if stats.protocol:
        out.append(f"Protocol `{stats.protocol.name}` v{stats.protocol.version} (hash `{stats.protocol.hash}`); "
                   f"style-controlled win rate {_fmt(stats.sc_win_rate)}; identical pairs (ties, no call) "
                   f"{_fmt(stats.identical_pairs)}")
    if stats.judges:
        agreement = stats.judge_agreement
        out += ["", "## Judges of the panel", "",
                "| judge | win rate | 95% CI | wins | losses | ties | unscored | parse failures | position consistency | calls |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        out.append(f"| **panel** | {_fmt(stats.win_rate)} | {_ci(stats.win_rate_ci)} | {stats.wins} | {stats.losses} | "
                   f"{stats.ties} | {stats.unscored} | {stats.parse_failures} ({_fmt(stats.parse_failure_rate())}, "
                   f"pooled) | {_fmt(stats.position_consistency)} | {stats.judge_calls} |")
        for name, j in stats.judges.items():
            out.append(f"| `{name}` | {_fmt(j.win_rate)} | {_ci(j.win_rate_ci)} | {j.wins} | {j.losses} | {j.ties} | "
                       f"{j.unscored} | {j.parse_failures} ({_fmt(j.parse_failure_rate())}) | "
                       f"{_fmt(j.position_consistency)} | {j.judge_calls} |")
        if agreement:
            kind = "Cohen's" if agreement.method == "cohen" else "Fleiss'"
            out += ["", f"Agreement between judges over the {agreement.n} items every judge scored: raw "
                        f"{_fmt(agreement.raw)}, {kind} kappa {_fmt(agreement.kappa)}"]
    if stats.calibration:
        out += ["", "Agreement with human labels (latest `evalhub judge calibrate`): " + "; ".join(
            f"`{name}` accuracy {_fmt(c.accuracy)}, kappa {_fmt(c.kappa)} on {c.n} pairs"
            for name, c in stats.calibration.items())]
    if stats.by_tag:
        judges = list(stats.judges or {})
        out += ["", "## Win rate by tag", "", "| tag | n | wins | losses | ties | win rate | 95% CI |"
                + "".join(f" `{j}` |" for j in judges), "|---|---|---|---|---|---|---|" + "---|" * len(judges)]
        for tag, t in stats.by_tag.items():
            per_judge = "".join(f" {_fmt(stats.judges[j].by_tag[tag].win_rate) if stats.judges[j].by_tag and tag in stats.judges[j].by_tag else '–'} |"
                                for j in judges)
            out.append(f"| {tag} | {t.n} | {t.wins} | {t.losses} | {t.ties} | {_fmt(t.win_rate)} | {_ci(t.win_rate_ci)} |"
                       + per_judge)
    return out


def _ci(ci) -> str:
    return "–" if not ci else f"{ci[0]:.3f}–{ci[1]:.3f}"


def _settings_text(config: dict) -> str:
    import json

    return json.dumps(config, indent=2, sort_keys=True, default=str)
