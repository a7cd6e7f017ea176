"""The per-item browser: instruction, ideal answer, both models' answers side by side, and both judged
orders with the judge's reasons, filterable to losses, ties or parse failures. Every text from the store is
drawn with st.text: a `<script>` in an answer is shown, never run."""

from __future__ import annotations

from collections import defaultdict

import streamlit as st

from evalhub.app.ideal_answers import ideal_answers
from evalhub.app.labels import Labels, golden_key
from evalhub.app.text import md_literal
from evalhub.app.verdicts import ItemVerdict, item_verdicts
from evalhub.store import RunDetail, StoredGeneration

PAGE_SIZE = 10
SHOW = {
    "all": lambda v: True,
    "losses": lambda v: v is not None and v.outcome == "loss",
    "ties": lambda v: v is not None and v.outcome == "tie",
    "wins": lambda v: v is not None and v.outcome == "win",
    "parse failures": lambda v: v is not None and v.parse_failed,
    "unscored": lambda v: v is None or v.outcome is None,
}
OUTCOME = {"win": "tuned wins", "tie": "tie", "loss": "tuned loses", None: "unscored"}


def _answer(column, title: str, generation: StoredGeneration | None) -> None:
    column.caption(title)
    if generation is None:
        column.text("(no answer stored)")
    elif generation.status != "ok":
        column.text(f"(generation failed: {generation.reason or 'no reason given'})")
    else:
        column.text(generation.output or "(empty answer)")


def _item(item_id: str, answers: dict[str, StoredGeneration], verdict: ItemVerdict | None, ideal: str | None) -> None:
    with st.container(border=True):
        outcome = OUTCOME[verdict.outcome if verdict else None]
        st.markdown(f"**{md_literal(item_id)}** · {outcome}" + (" · parse failure" if verdict and verdict.parse_failed else ""))
        prompt = next((g.prompt for g in answers.values()), None)
        st.caption("Instruction")
        st.text(prompt if prompt is not None else "(no prompt stored)")
        ideal_column, base_column, tuned_column = st.columns(3)
        ideal_column.caption("Ideal answer")
        ideal_column.text(ideal if ideal is not None else "(not available)")
        _answer(base_column, "Base answer", answers.get("base"))
        _answer(tuned_column, "Tuned answer", answers.get("tuned"))
        for call in verdict.judgments if verdict else ():
            order = "first (Answer A)" if call.tuned_position == "A" else "second (Answer B)"
            said = OUTCOME[call.verdict] if call.status == "ok" else call.status.replace("_", " ")
            st.caption(f"Judge, tuned answer shown {order}: {said}")
            st.text(call.reason if call.status == "ok" and call.reason else (call.raw_reply or call.reason or "(no reply)"))


def show_items(detail: RunDetail, labels: Labels) -> None:
    """Draw the item browser of one run."""
    verdicts = {(v.golden_file, v.item_id): v for v in item_verdicts(detail.judgments)}
    answers: dict[tuple[str, str], dict[str, StoredGeneration]] = defaultdict(dict)
    for generation in detail.generations:
        answers[(generation.golden_file, generation.item_id)][generation.role] = generation
    if not answers and not verdicts:
        st.caption("This run judged no golden set.")
        return

    filters = st.columns([3, 2])
    show = filters[0].radio("Show", list(SHOW), horizontal=True, key="item_filter")
    golden_file = detail.run.golden[0] if detail.run.golden else None
    if len(detail.run.golden) > 1:
        golden_file = filters[1].selectbox(
            "Golden set", detail.run.golden, key="item_golden",
            format_func=lambda path: labels.golden_sets.get(golden_key(detail.run, path), path))
    keys = sorted(k for k in set(answers) | set(verdicts) if k[0] == golden_file and SHOW[show](verdicts.get(k)))
    ideal = (ideal_answers(golden_file, detail.ideal_answers, detail.run.input_hashes.get(golden_file))
             if golden_file else None)
    if ideal is not None and ideal.note:
        st.caption(md_literal(ideal.note))
    if not keys:
        st.info(f"No {show} in this golden set.")
        return
    pages = (len(keys) + PAGE_SIZE - 1) // PAGE_SIZE
    page = filters[1].number_input(f"Page (of {pages}; {len(keys)} items)", min_value=1, max_value=pages, value=1,
                                   key=f"item_page:{show}:{golden_file}")
    for key in keys[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]:
        _item(key[1], answers.get(key, {}), verdicts.get(key), ideal.answers.get(key[1]) if ideal else None)
