"""One run's page: settings and versions, the team's blind votes, judge telemetry, forgetting per task with
CIs, perplexity, the adapter's training curves (losses, and the golden win rate and task accuracies its trainer
measured per step, with the checkpoint kept), and the per-item browser."""

from __future__ import annotations

import json
from collections import Counter

import altair as alt
import pandas as pd
import streamlit as st

from evalhub.app.item_browser import show_items
from evalhub.app.labels import Labels
from evalhub.app.text import md_literal
from evalhub.app.training_chart import eval_curves, kept_caption
from evalhub.app.verdicts import item_verdicts
from evalhub.store import RunDetail


STATUS_COLORS = alt.Scale(domain=["significant drop", "no significant drop"], range=["#d62728", "#1f77b4"])


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _flat(prefix: str, value) -> list[tuple[str, str]]:
    """A nested config as (dotted key, JSON value) rows: every setting on one line of a table."""
    if isinstance(value, dict) and value:
        return [row for key, inner in value.items() for row in _flat(f"{prefix}.{key}" if prefix else key, inner)]
    return [(prefix, json.dumps(value, default=str))]


def _overview(detail: RunDetail) -> None:
    run, summary = detail.run, detail.run.summary
    stats = summary.judge_stats
    if stats:
        lo, hi = stats.win_rate_ci or (None, None)
        cells = st.columns(5)
        cells[0].metric("Win rate", _percent(stats.win_rate), help="(wins + ties/2) / scored items")
        cells[0].caption(f"95% CI {_percent(lo)} – {_percent(hi)} · {stats.scored} of {stats.n} items scored")
        cells[1].metric("Length-controlled win rate", _percent(stats.lc_win_rate))
        cells[2].metric("Wins / ties / losses", f"{stats.wins} / {stats.ties} / {stats.losses}")
        cells[3].metric("Sign test p", "–" if stats.p_value is None else f"{stats.p_value:.3g}")
        gate = summary.gate
        cells[4].metric("Gate", "–" if gate is None else "passed" if gate.passed else "FAILED")
        if len(run.golden) > 1:
            st.caption("Over all the run's golden sets together; the leaderboard and the Judge tab split them.")
    facts = {"run": run.run_id, "kind": run.kind, "date": f"{run.created_at:%Y-%m-%d %H:%M:%S}",
             "base": run.base.path, "tuned": f"{run.tuned.path} ({run.tuned.kind})",
             "adapter sha256": run.tuned.adapter_hash or "–", "judge": run.judge or "–",
             "golden sets": ", ".join(run.golden) or "–"}
    st.dataframe(pd.DataFrame(list(facts.items()), columns=["", "value"]), hide_index=True)
    for warning in summary.warnings:
        st.warning(warning)
    if summary.gate:
        st.subheader("Gate checks")
        st.dataframe(pd.DataFrame([check.model_dump() for check in summary.gate.checks]), hide_index=True)
    settings, versions = st.columns([3, 1])
    settings.subheader("Settings")
    settings.dataframe(pd.DataFrame(_flat("", detail.config.get("request", {})), columns=["setting", "value"]),
                       hide_index=True)
    versions.subheader("Versions")
    versions.dataframe(pd.DataFrame(list((detail.config.get("versions") or {}).items()), columns=["library", "version"]),
                       hide_index=True)
    with st.expander("Full configuration (JSON)"):
        st.json(detail.config, expanded=False)


def _human(human: dict | None) -> None:
    """What the team's blind votes say (evalhub.human.human_summary, as `evalhub show RUN --json` prints it)."""
    st.subheader("Human review")
    if not human:
        st.caption("Nobody has voted on this run yet: the Review page (or `evalhub review import`) collects votes.")
        return
    lo, hi = human["win_rate_ci"] or (None, None)
    cells = st.columns(3)
    cells[0].metric("Human win rate", _percent(human["win_rate"]), help="The reviewers' verdict per item (their "
                    "majority; a tie counts half), over the items they voted on")
    cells[0].caption(f"95% CI {_percent(lo)} – {_percent(hi)} · {human['n_items']} items")
    cells[1].metric("Votes", human["n_votes"])
    cells[1].caption(md_literal(f"{len(human['reviewers'])} reviewers: {', '.join(human['reviewers'])}"))
    agreement = human["reviewer_agreement"]
    kappa = agreement["kappa"]
    cells[2].metric("Reviewer agreement (Fleiss' kappa)", "–" if kappa is None else f"{kappa:.3f}",
                    help=f"Over the {agreement['n']} items two or more reviewers voted on")
    if human["judge_agreement"]:
        st.dataframe(pd.DataFrame([{"judge": judge, "items": a["n"], "accuracy": a["accuracy"], "kappa": a["kappa"]}
                                   for judge, a in human["judge_agreement"].items()]), hide_index=True,
                     column_config={"accuracy": st.column_config.NumberColumn("agreement with the reviewers",
                                                                              format="percent"),
                                    "kappa": st.column_config.NumberColumn("Cohen's kappa", format="%.3f")})


def _judge(detail: RunDetail) -> None:
    stats = detail.run.summary.judge_stats
    if not stats:
        st.caption("This run judged no golden set.")
        return
    cells = st.columns(5)
    cells[0].metric("Position consistency", _percent(stats.position_consistency),
                    help="Share of items whose two orders got the same verdict; low means position bias")
    cells[1].metric("Parse failures", stats.parse_failures, help="Judge replies that could not be read")
    cells[2].metric("Canary accuracy", _percent(stats.canary_accuracy),
                    help="Ideal answer vs a non-answer: a working judge prefers the ideal every time")
    cells[3].metric("Judge calls", stats.judge_calls)
    cells[4].metric("Cost", "–" if stats.cost_usd is None else f"${stats.cost_usd:.4f}")
    from evalhub.report.resolution import resolution_note

    if (note := resolution_note(stats)) is not None:
        st.caption(f"What this run can see: {note}.")
    _panel_and_tags(stats)
    counts = Counter()
    for verdict in item_verdicts(detail.judgments):
        counts[(verdict.golden_file, verdict.outcome or "unscored")] += 1
        counts[(verdict.golden_file, "parse failures")] += verdict.parse_failed
    per_file = pd.DataFrame([{"golden set": path, **{k: counts[(path, k)] for k in
                                                    ("win", "tie", "loss", "unscored", "parse failures")}}
                             for path in detail.run.golden])
    st.subheader("Per golden set")
    st.dataframe(per_file, hide_index=True)
    judge_metrics = [m for m in detail.metrics if m["stage"] == "judge"]
    if judge_metrics:
        st.subheader("More judge measurements")
        st.dataframe(pd.DataFrame([{"measure": m["name"], "value": m["value"] if m["value"] is not None else
                                    json.dumps((m["detail"] or {}).get("value"))} for m in judge_metrics]),
                     hide_index=True)


def _panel_and_tags(stats) -> None:
    """The protocol and style control; a panel's judges beside the panel, with their agreement; each judge's
    agreement with human labels; and the win rate by tag as a chart (per judge for a panel)."""
    protocol = stats.protocol
    st.caption(md_literal(
        f"Protocol {protocol.name if protocol else 'pairwise'}"
        + (f" v{protocol.version} (hash {protocol.hash})" if protocol else "")
        + f" · style-controlled win rate {_percent(stats.sc_win_rate)}"
        + f" · identical pairs (ties without a judge call) {stats.identical_pairs if stats.identical_pairs is not None else '–'}"))
    if stats.judges:
        st.subheader("Judges of the panel")
        rows = [{"judge": "panel (majority)", "win rate": stats.win_rate, "wins": stats.wins, "losses": stats.losses,
                 "ties": stats.ties, "unscored": stats.unscored, "parse failures": stats.parse_failures,
                 "position consistency": stats.position_consistency, "calls": stats.judge_calls}]
        rows += [{"judge": name, "win rate": j.win_rate, "wins": j.wins, "losses": j.losses, "ties": j.ties,
                  "unscored": j.unscored, "parse failures": j.parse_failures,
                  "position consistency": j.position_consistency, "calls": j.judge_calls}
                 for name, j in stats.judges.items()]
        st.dataframe(pd.DataFrame(rows), hide_index=True,
                     column_config={"win rate": st.column_config.NumberColumn(format="%.3f"),
                                    "position consistency": st.column_config.NumberColumn(format="%.3f")})
        agreement = stats.judge_agreement
        if agreement:
            kind = "Cohen's" if agreement.method == "cohen" else "Fleiss'"
            st.metric(f"Agreement between judges ({kind} kappa)",
                      "–" if agreement.kappa is None else f"{agreement.kappa:.3f}",
                      help=f"Over the {agreement.n} items every judge scored; raw agreement "
                           f"{_percent(agreement.raw)}")
    if stats.calibration:
        st.subheader("Agreement with human labels")
        st.dataframe(pd.DataFrame([{"judge": name, "pairs": c.n, "accuracy": c.accuracy, "kappa": c.kappa,
                                    "position consistency": c.position_consistency, "calibrated": c.created_at}
                                   for name, c in stats.calibration.items()]), hide_index=True)
    if stats.by_tag:
        st.subheader("Win rate by tag")
        sources = {"panel" if stats.judges else "judge": stats.by_tag,
                   **{name: j.by_tag or {} for name, j in (stats.judges or {}).items()}}
        frame = pd.DataFrame([{"tag": tag, "judge": source, "win rate": t.win_rate, "n": t.n,
                               "low": t.win_rate_ci[0] if t.win_rate_ci else None,
                               "high": t.win_rate_ci[1] if t.win_rate_ci else None}
                              for source, tags in sources.items() for tag, t in tags.items()])
        base = alt.Chart(frame).encode(y=alt.Y("tag:N", title=None), yOffset="judge:N",
                                       color=alt.Color("judge:N", title=None))
        chart = (alt.Chart(pd.DataFrame({"half": [0.5]})).mark_rule(strokeDash=[4, 4]).encode(x="half:Q")
                 + base.mark_rule().encode(x=alt.X("low:Q", title="Win rate (95% CI)", scale=alt.Scale(domain=[0, 1])),
                                           x2="high:Q")
                 + base.mark_point(filled=True, size=80).encode(x="win rate:Q",
                                                                tooltip=["tag", "judge", "win rate", "n", "low", "high"]))
        st.altair_chart(chart)


def _answer_metrics(detail: RunDetail) -> None:
    """Every per-answer metric of the run (`--answer-metric`), in one table whatever each one measures."""
    metrics = detail.run.summary.answer_metrics
    if not metrics:
        return
    st.subheader("Answer metrics")
    st.dataframe(pd.DataFrame([{"metric": name, "items": m.n, "base": m.base, "tuned": m.tuned, "delta": m.delta,
                                "95% CI low": m.ci[0] if m.ci else None, "95% CI high": m.ci[1] if m.ci else None,
                                "p": m.p_value} for name, m in metrics.items()]), hide_index=True)


def _forgetting(detail: RunDetail) -> None:
    if not detail.benchmarks:
        st.caption("This run measured no benchmark (compare with --tasks).")
        return
    frame = pd.DataFrame(detail.benchmarks)
    st.dataframe(frame, hide_index=True, column_order=["task", "metric", "base", "tuned", "delta", "ci_lo", "ci_hi",
                                                       "p_value", "forgetting", "n", "task_version"],
                 column_config={"delta": st.column_config.NumberColumn("Δ (tuned − base)", format="%+.3f"),
                                "ci_lo": st.column_config.NumberColumn("95% CI low", format="%+.3f"),
                                "ci_hi": st.column_config.NumberColumn("95% CI high", format="%+.3f"),
                                "p_value": st.column_config.NumberColumn("p", format="%.3g"),
                                "forgetting": st.column_config.CheckboxColumn("Significant forgetting")})
    frame["status"] = frame["forgetting"].map({True: "significant drop", False: "no significant drop"})
    base = alt.Chart(frame).encode(y=alt.Y("task:N", title=None))
    chart = (alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(strokeDash=[4, 4]).encode(x="zero:Q")
             + base.mark_rule().encode(x=alt.X("ci_lo:Q", title="Accuracy change, tuned − base (95% CI)"), x2="ci_hi:Q",
                                       color=alt.Color("status:N", title=None, scale=STATUS_COLORS))
             + base.mark_point(filled=True, size=80).encode(x="delta:Q", color="status:N",
                                                            tooltip=["task", "base", "tuned", "delta", "p_value"]))
    st.altair_chart(chart)


def _perplexity(detail: RunDetail) -> None:
    sets = detail.run.summary.perplexity
    if not sets:
        st.caption("This run measured no perplexity (compare with --perplexity-data NAME=FILE).")
        return
    tokens = {row["dataset"]: row["tokens"] for row in detail.perplexity if row["role"] == "base"}
    st.dataframe(pd.DataFrame([{"data set": name, **values.model_dump(), "tokens": tokens.get(name)}
                               for name, values in sets.items()]),
                 hide_index=True,
                 column_config={"base": st.column_config.NumberColumn("Perplexity, base", format="%.3f"),
                                "tuned": st.column_config.NumberColumn("Perplexity, tuned", format="%.3f"),
                                "delta_pct": st.column_config.NumberColumn("Δ", format="%+.2f%%"),
                                "bpb_base": st.column_config.NumberColumn("Bits/byte, base", format="%.4f"),
                                "bpb_tuned": st.column_config.NumberColumn("Bits/byte, tuned", format="%.4f")})


def _kept_rule(kept: dict | None) -> list:
    """A dashed vertical line at the step whose weights the adapter holds (none when the record names none)."""
    if kept is None:
        return []
    return [alt.Chart(pd.DataFrame([{"step": kept["step"], "kept": f"step {kept['step']} (by {kept['by']})"}]))
            .mark_rule(strokeDash=[6, 3], color="gray").encode(x="step:Q", tooltip=["kept"])]


def _win_rate_chart(rows: list[dict], kept: dict | None) -> alt.LayerChart:
    frame = pd.DataFrame(rows)
    y = alt.Y("win_rate:Q", title="golden win rate vs base (95% CI)", scale=alt.Scale(domain=[0, 1]))
    band = frame.dropna(subset=["win_rate_lower", "win_rate_upper"])
    layers = [alt.Chart(pd.DataFrame({"half": [0.5]})).mark_rule(strokeDash=[4, 4]).encode(y="half:Q")]
    if not band.empty:
        layers.append(alt.Chart(band).mark_area(opacity=0.25).encode(
            x="step:Q", y=alt.Y("win_rate_lower:Q", scale=alt.Scale(domain=[0, 1])), y2="win_rate_upper:Q"))
    layers.append(alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step"), y=y, tooltip=["step", "win_rate", "win_rate_lower", "win_rate_upper"]))
    return alt.layer(*layers, *_kept_rule(kept))


def _accuracy_chart(rows: list[dict], kept: dict | None) -> alt.LayerChart:
    line = alt.Chart(pd.DataFrame(rows)).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("accuracy:Q", title="task accuracy", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("task:N", title=None), tooltip=["task", "step", "accuracy"])
    return alt.layer(line, *_kept_rule(kept))


def _training(detail: RunDetail) -> None:
    curves = eval_curves(detail.training_record)
    if not detail.training_curve and curves.empty:
        st.caption("The store has no training curve for this model (adapters trained with evalhub's trainers "
                   "record theirs).")
        return
    charts = []
    if detail.training_curve:
        st.caption(f"Loss while training the adapter ({md_literal(detail.training_method or 'unknown method')}).")
        charts.append(alt.layer(alt.Chart(pd.DataFrame(detail.training_curve)).mark_line(point=True).encode(
            x=alt.X("step:Q", title="step"), y=alt.Y("loss:Q", title="loss"), color=alt.Color("split:N", title=None)),
            *_kept_rule(curves.kept)))
    if curves.win_rate:
        charts.append(_win_rate_chart(curves.win_rate, curves.kept))
    if curves.accuracy:
        charts.append(_accuracy_chart(curves.accuracy, curves.kept))
    if len(charts) == 1:
        st.altair_chart(charts[0])
    elif charts:  # the evaluations beside the losses, step against step
        for column, chart in zip(st.columns(len(charts)), charts):
            column.altair_chart(chart)
    if curves.win_rate:
        golden = (detail.training_record or {}).get("golden_eval") or {}
        st.caption(md_literal(f"Win rate of the model being trained against its base on {len(golden.get('items') or [])} "
                              f"items of {golden.get('golden', 'the golden set')}, judge {golden.get('judge', '–')}; "
                              "the dashed line is 0.5, a tie with the base."))
    if (kept := kept_caption(curves.kept)) is not None:
        st.caption(md_literal(kept))
    if curves.failures:
        st.caption(md_literal("Failed evaluations: " + "; ".join(curves.failures)))


def show_run(detail: RunDetail, labels: Labels, human: dict | None = None) -> None:
    """Draw one run's page (`human`: the run's human-vote summary, None when nobody voted)."""
    run = detail.run
    st.title(md_literal(f"{labels.models[run.tuned.model_id]} vs {labels.models[run.base.model_id]}"))
    st.caption(md_literal(f"run {run.run_id} · {run.created_at:%Y-%m-%d %H:%M} · judge {run.judge or '–'}"))
    tabs = st.tabs(["Overview", "Judge", "Forgetting", "Perplexity", "Training", "Items"])
    for tab, section in zip(tabs, (lambda: (_overview(detail), _human(human)),
                                   lambda: (_judge(detail), _answer_metrics(detail)),
                                   lambda: _forgetting(detail), lambda: _perplexity(detail),
                                   lambda: _training(detail), lambda: show_items(detail, labels))):
        with tab:
            section()
