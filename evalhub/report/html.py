"""The self-contained HTML report. Jinja2 autoescaping keeps model outputs as text, never markup."""

from __future__ import annotations

import json

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>evalhub run {{ s.run_id }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f4f4f4}.pass{color:#070}.fail{color:#b00;font-weight:bold}
.side{display:grid;grid-template-columns:1fr 1fr;gap:1em}pre{white-space:pre-wrap;background:#f8f8f8;padding:.5em;border:1px solid #eee}
</style></head><body>
<h1>evalhub run <code>{{ s.run_id }}</code></h1>
<p>base <code>{{ s.base }}</code> · tuned <code>{{ s.tuned }}</code>{% if s.judge %} · judge <code>{{ s.judge }}</code>{% endif %}</p>
{% if s.judge_stats %}{% set j = s.judge_stats %}
<h2>Win rate of tuned over base: {{ num(j.win_rate) }} (95% CI {{ num(j.win_rate_ci[0] if j.win_rate_ci else none) }}–{{ num(j.win_rate_ci[1] if j.win_rate_ci else none) }}), {{ j.scored }} of {{ j.n }} items scored</h2>
<table><tr><th>wins</th><th>losses</th><th>ties</th><th>scored</th><th>unscored</th><th>p (sign test)</th><th>LC win rate</th><th>position consistency</th><th>parse failures</th><th>canary accuracy</th><th>judge calls</th><th>cost USD</th></tr>
<tr><td>{{ j.wins }}</td><td>{{ j.losses }}</td><td>{{ j.ties }}</td><td>{{ j.scored }}</td><td>{{ j.unscored }}</td><td>{{ num(j.p_value, 4) }}</td><td>{{ num(j.lc_win_rate) }}</td><td>{{ num(j.position_consistency) }}</td><td>{{ j.parse_failures }}</td><td>{{ num(j.canary_accuracy) }}</td><td>{{ j.judge_calls }}</td><td>{{ num(j.cost_usd, 4) }}</td></tr></table>
{% if resolution %}<p>What this run can see: {{ resolution }}.</p>{% endif %}
{% if j.protocol %}<p>Protocol <code>{{ j.protocol.name }}</code> v{{ j.protocol.version }} (hash <code>{{ j.protocol.hash }}</code>) · style-controlled win rate {{ num(j.sc_win_rate) }} · identical pairs {{ j.identical_pairs if j.identical_pairs is not none else '–' }}</p>{% endif %}
{% if j.judges %}<h2>Judges of the panel</h2><table><tr><th>judge</th><th>win rate</th><th>wins</th><th>losses</th><th>ties</th><th>unscored</th><th>parse failures</th><th>position consistency</th><th>calls</th></tr>
<tr><td><b>panel</b></td><td>{{ num(j.win_rate) }}</td><td>{{ j.wins }}</td><td>{{ j.losses }}</td><td>{{ j.ties }}</td><td>{{ j.unscored }}</td><td>{{ j.parse_failures }}</td><td>{{ num(j.position_consistency) }}</td><td>{{ j.judge_calls }}</td></tr>
{% for name, one in j.judges.items() %}<tr><td><code>{{ name }}</code></td><td>{{ num(one.win_rate) }}</td><td>{{ one.wins }}</td><td>{{ one.losses }}</td><td>{{ one.ties }}</td><td>{{ one.unscored }}</td><td>{{ one.parse_failures }}</td><td>{{ num(one.position_consistency) }}</td><td>{{ one.judge_calls }}</td></tr>{% endfor %}</table>
{% if j.judge_agreement %}<p>Agreement between judges over the {{ j.judge_agreement.n }} items every judge scored: raw {{ num(j.judge_agreement.raw) }}, {{ "Cohen's" if j.judge_agreement.method == 'cohen' else "Fleiss'" }} kappa {{ num(j.judge_agreement.kappa) }}</p>{% endif %}{% endif %}
{% if j.calibration %}<p>Agreement with human labels: {% for name, c in j.calibration.items() %}<code>{{ name }}</code> accuracy {{ num(c.accuracy) }}, kappa {{ num(c.kappa) }} on {{ c.n }} pairs{% if not loop.last %}; {% endif %}{% endfor %}</p>{% endif %}
{% if j.by_tag %}<h2>Win rate by tag</h2><table><tr><th>tag</th><th>n</th><th>wins</th><th>losses</th><th>ties</th><th>win rate</th><th>95% CI</th></tr>
{% for tag, t in j.by_tag.items() %}<tr><td>{{ tag }}</td><td>{{ t.n }}</td><td>{{ t.wins }}</td><td>{{ t.losses }}</td><td>{{ t.ties }}</td><td>{{ num(t.win_rate) }}</td><td>{{ num(t.win_rate_ci[0] if t.win_rate_ci else none) }}–{{ num(t.win_rate_ci[1] if t.win_rate_ci else none) }}</td></tr>{% endfor %}</table>{% endif %}
{% endif %}
{% for title, uri in figures.items() %}<h3>{{ title }}</h3><img alt="{{ title }}" src="{{ uri }}">{% endfor %}
{% if s.perplexity %}<h2>Perplexity</h2><table><tr><th>data</th><th>base</th><th>tuned</th><th>change %</th><th>bpb base</th><th>bpb tuned</th></tr>
{% for name, p in s.perplexity.items() %}<tr><td>{{ name }}</td><td>{{ num(p.base) }}</td><td>{{ num(p.tuned) }}</td><td>{{ num(p.delta_pct, 2) }}</td><td>{{ num(p.bpb_base, 4) }}</td><td>{{ num(p.bpb_tuned, 4) }}</td></tr>{% endfor %}</table>{% endif %}
{% if s.answer_metrics %}<h2>Answer metrics</h2><table><tr><th>metric</th><th>items</th><th>base</th><th>tuned</th><th>delta</th><th>95% CI</th><th>p</th></tr>
{% for name, m in s.answer_metrics.items() %}<tr><td>{{ name }}</td><td>{{ m.n }}</td><td>{{ num(m.base) }}</td><td>{{ num(m.tuned) }}</td><td>{{ num(m.delta) }}</td><td>{{ num(m.ci[0] if m.ci else none) }}–{{ num(m.ci[1] if m.ci else none) }}</td><td>{{ num(m.p_value, 4) }}</td></tr>{% endfor %}</table>{% endif %}
{% if s.benchmarks %}<h2>Forgetting benchmarks</h2><table><tr><th>task</th><th>base</th><th>tuned</th><th>delta</th><th>95% CI</th><th>p</th><th>forgetting</th></tr>
{% for task, b in s.benchmarks.items() %}<tr><td>{{ task }}</td><td>{{ num(b.base) }}</td><td>{{ num(b.tuned) }}</td><td>{{ num(b.delta) }}</td><td>{{ num(b.ci[0] if b.ci else none) }}–{{ num(b.ci[1] if b.ci else none) }}</td><td>{{ num(b.p_value, 4) }}</td><td class="{{ 'fail' if b.forgetting else 'pass' }}">{{ 'yes' if b.forgetting else 'no' }}</td></tr>{% endfor %}</table>{% endif %}
{% if s.gate %}<h2>Gate: <span class="{{ 'pass' if s.gate.passed else 'fail' }}">{{ 'passed' if s.gate.passed else 'FAILED' }}</span></h2>
<table><tr><th>check</th><th>threshold</th><th>value</th><th>result</th></tr>{% for c in s.gate.checks %}<tr><td>{{ c.name }}</td><td>{{ num(c.threshold) }}</td><td>{{ num(c.value) }}{% if c.detail %} ({{ c.detail }}){% endif %}</td><td class="{{ 'pass' if c.passed else 'fail' }}">{{ 'pass' if c.passed else 'fail' }}</td></tr>{% endfor %}</table>{% endif %}
{% for warning in s.warnings %}<p class="fail">warning: {{ warning }}</p>{% endfor %}
{% if losses %}<h2>Items the tuned model lost most clearly</h2>{% for item in losses %}
<h3>{{ item.key }}</h3><p><b>Instruction</b></p><pre>{{ item.instruction }}</pre><p><b>Ideal answer</b></p><pre>{{ item.ideal }}</pre>
<div class="side"><div><b>Base</b><pre>{{ item.base }}</pre></div><div><b>Tuned</b><pre>{{ item.tuned }}</pre></div></div>
<p><b>Judge</b>: {{ item.reasons|join(' / ') }}</p>{% endfor %}{% endif %}
<h2>Settings and versions</h2><pre>{{ settings }}</pre>
</body></html>
"""


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render_html(summary, config: dict, losses: list[dict], figures: dict[str, str]) -> str:
    """The run report as one HTML page with its figures embedded."""
    import jinja2

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    template = environment.from_string(TEMPLATE)
    from evalhub.report.resolution import resolution_note

    return template.render(s=summary, losses=losses, figures=figures, num=_num,
                           resolution=resolution_note(summary.judge_stats),
                           settings=json.dumps(config, indent=2, sort_keys=True, default=str))
