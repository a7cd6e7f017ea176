"""Reports of a run: Markdown and a self-contained HTML page, plus the gate's JUnit XML and summary."""

from evalhub.report.junit import write_junit
from evalhub.report.losses import clearest_losses
from evalhub.report.write import write_report

__all__ = ["write_report", "write_junit", "clearest_losses"]
