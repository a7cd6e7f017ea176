"""Write a run's Markdown and HTML reports into the report folder."""

from __future__ import annotations

from pathlib import Path

from evalhub.report.html import render_html
from evalhub.report.markdown import render_markdown
from evalhub.report.plots import report_figures


def write_report(summary, config: dict, losses: list[dict], report_dir: Path) -> tuple[Path, Path]:
    """Write `<run_id>.md` and `<run_id>.html`; return their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    markdown_path = report_dir / f"{summary.run_id}.md"
    html_path = report_dir / f"{summary.run_id}.html"
    markdown_path.write_text(render_markdown(summary, config, losses), encoding="utf-8")
    html_path.write_text(render_html(summary, config, losses, report_figures(summary)), encoding="utf-8")
    return markdown_path, html_path
