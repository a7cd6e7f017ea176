"""Report figures as PNG data URIs, so the HTML page is one self-contained file."""

from __future__ import annotations

import base64
import io


def _data_uri(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def report_figures(summary) -> dict[str, str]:
    """Figures for whichever stages the run has: {title: data URI}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, str] = {}
    stats = summary.judge_stats
    if stats and stats.win_rate is not None:  # nothing scored: no win rate to draw
        fig, ax = plt.subplots(figsize=(6, 1.6))
        lo, hi = stats.win_rate_ci or (stats.win_rate, stats.win_rate)
        ax.errorbar([stats.win_rate], [0], xerr=[[stats.win_rate - lo], [hi - stats.win_rate]], fmt="o", capsize=6)
        ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_yticks([])
        ax.set_xlabel("win rate of tuned over base (95% CI); dashed: parity")
        figures["Win rate"] = _data_uri(fig)
    if stats:
        fig, ax = plt.subplots(figsize=(6, 2.2))
        names = ["position consistency", "parse-failure rate", "canary accuracy"]
        values = [stats.position_consistency or 0, stats.parse_failure_rate() or 0, stats.canary_accuracy or 0]
        ax.barh(names, values)
        ax.set_xlim(0, 1)
        ax.set_title("judge telemetry")
        figures["Judge telemetry"] = _data_uri(fig)
    measured = {task: b for task, b in (summary.benchmarks or {}).items() if b.delta is not None}
    if measured:
        tasks = list(measured)
        deltas = [measured[t].delta for t in tasks]
        cis = [measured[t].ci or (measured[t].delta, measured[t].delta) for t in tasks]
        errors = [[d - ci[0] for d, ci in zip(deltas, cis)], [ci[1] - d for d, ci in zip(deltas, cis)]]
        fig, ax = plt.subplots(figsize=(6, 0.6 + 0.5 * len(tasks)))
        colours = ["tab:red" if measured[t].forgetting else "tab:blue" for t in tasks]
        ax.barh(tasks, deltas, xerr=errors, color=colours, capsize=4)
        ax.axvline(0, color="grey", linewidth=1)
        ax.set_xlabel("accuracy delta, tuned − base (95% CI); red: significant forgetting")
        figures["Forgetting benchmarks"] = _data_uri(fig)
    if summary.perplexity:
        names = list(summary.perplexity)
        fig, ax = plt.subplots(figsize=(6, 0.8 + 0.5 * len(names)))
        y = range(len(names))
        ax.barh([i - 0.2 for i in y], [summary.perplexity[n].base for n in names], height=0.4, label="base")
        ax.barh([i + 0.2 for i in y], [summary.perplexity[n].tuned for n in names], height=0.4, label="tuned")
        ax.set_yticks(list(y), names)
        ax.set_xlabel("perplexity (lower is better)")
        ax.legend()
        figures["Perplexity"] = _data_uri(fig)
    return figures
