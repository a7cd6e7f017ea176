"""The leaderboard page: which tuned model beats its base on which golden set, at what cost to general
skills, and a Bradley-Terry ranking of every model judged on the same golden set."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from evalhub.app.labels import Labels
from evalhub.app.leaderboard_table import leaderboard_rows
from evalhub.app.loading import load_human_win_rates, load_leaderboard
from evalhub.app.ratings import golden_set_ratings
from evalhub.store import StoreLocation
from evalhub.store import LeaderboardData, LeaderboardFilter

LEADERBOARD_PAGE = "Leaderboard"
RUN_PAGE = "Run details"
FILTERS = {"golden_set": "Golden set", "judge": "Judge", "base": "Base"}


def _filters(index: LeaderboardData, labels: Labels) -> LeaderboardFilter:
    """Draw the filters (golden set, judge, base; empty keeps everything; choices from every run, so they never
    vanish) and the every-run toggle, and return them as the store's filter."""
    golden = {labels.golden_sets[key]: key for key in index.golden_sets}
    if index.unjudged:
        golden["–"] = None
    bases = {labels.models[model_id]: model_id for model_id in index.base_ids}
    options = {"golden_set": golden, "judge": {judge: judge for judge in index.judges}, "base": bases}
    columns = st.columns([2, 2, 2, 1.4], vertical_alignment="bottom")
    chosen = {}
    for column, (field, label) in zip(columns, FILTERS.items()):
        picked = column.multiselect(label, sorted(options[field]), key=f"filter_{field}", placeholder="all")
        chosen[field] = tuple(options[field][name] for name in picked if name in options[field])
    every_run = columns[3].toggle("every run", key="every_run", help="Also older runs of the same model and golden set")
    return LeaderboardFilter(golden_keys=chosen["golden_set"], judges=chosen["judge"], base_ids=chosen["base"],
                             every_run=every_run)


def _open_selected_run() -> None:
    """Row selection in the table opens that run's page (a callback: it runs before the sidebar is drawn)."""
    selection = st.session_state["leaderboard"].selection.rows
    if selection:
        st.session_state["page"] = RUN_PAGE
        st.session_state["run_id"] = st.session_state["leaderboard_run_ids"][selection[0]]


def _table(rows: pd.DataFrame) -> None:
    ppl_columns = sorted(c for c in rows.columns if c.startswith("ppl_delta_pct:"))
    config = {
        "tuned": st.column_config.TextColumn("Tuned model", pinned=True),
        "tuned_kind": st.column_config.TextColumn("Kind"),
        "base": "Base", "golden_set": "Golden set", "judge": "Judge",
        "win_rate": st.column_config.ProgressColumn("Win rate", min_value=0.0, max_value=1.0, format="percent",
                                                    help="(wins + ties/2) / scored items, tuned vs its base"),
        "ci_lo": st.column_config.NumberColumn("95% CI low", format="percent"),
        "ci_hi": st.column_config.NumberColumn("95% CI high", format="percent"),
        "wins": "Wins", "ties": "Ties", "losses": "Losses",
        "lc_win_rate": st.column_config.NumberColumn("LC win rate", format="percent",
                                                     help="Length-controlled: the win rate at equal answer lengths"),
        "human_win_rate": st.column_config.NumberColumn(
            "Human win rate", format="percent", help="The reviewers' blind votes (Review page); blank: no votes yet"),
        "largest_forgetting": st.column_config.TextColumn(
            "Largest forgetting", help="Largest significant accuracy drop on a benchmark (paired test)"),
        **{c: st.column_config.NumberColumn(f"Δ ppl {c.split(':', 1)[1]}", format="%+.1f%%",
                                            help="Perplexity change of the tuned model, percent") for c in ppl_columns},
        "gate": "Gate",
        "cost_usd": st.column_config.NumberColumn("Judge cost", format="dollar"),
        "date": st.column_config.DatetimeColumn("Date", format="YYYY-MM-DD HH:mm"),
        "run_id": "Run",
    }
    st.session_state["leaderboard_run_ids"] = rows["run_id"].tolist()
    st.dataframe(rows, column_order=list(config), column_config=config, hide_index=True, key="leaderboard",
                 on_select=_open_selected_run, selection_mode="single-row")
    st.caption("Select a row to open its run. Win rate and its 95% bootstrap CI count a tie as half a win; "
               "items whose two judged orders disagree are ties.")


def _ranking(data: LeaderboardData, labels: Labels, rows: pd.DataFrame, cache_key: tuple) -> None:
    st.subheader("Ranking across runs")
    st.caption("Bradley-Terry ratings (Elo scale, 95% bootstrap CI) from every item judged on the golden set, "
               "base and tuned models of all runs passing the filters: adapters compared only with their base "
               "are ranked against each other through it.")
    frames = []
    for key in rows["golden_key"].dropna().unique():
        ratings = _cached_ratings(data, labels, key, cache_key)
        frames.append(ratings.assign(golden_set=labels.golden_sets[key]))
    if not frames or all(f.empty for f in frames):
        st.caption("No judged items to rank yet.")
        return
    ranking = pd.concat(frames, ignore_index=True)
    st.dataframe(ranking, hide_index=True, key="ranking",
                 column_order=["golden_set", "model", "rating", "ci_lo", "ci_hi", "items"],
                 column_config={"golden_set": "Golden set", "model": "Model",
                                "rating": st.column_config.NumberColumn("Rating", format="%.0f"),
                                "ci_lo": st.column_config.NumberColumn("95% CI low", format="%.0f"),
                                "ci_hi": st.column_config.NumberColumn("95% CI high", format="%.0f"),
                                "items": "Items judged"})
    base = alt.Chart(ranking).encode(y=alt.Y("model:N", sort="-x", title=None))
    chart = (base.mark_rule().encode(x=alt.X("ci_lo:Q", title="Bradley-Terry rating", scale=alt.Scale(zero=False)),
                                     x2="ci_hi:Q")
             + base.mark_point(filled=True, size=80).encode(x="rating:Q", tooltip=["model", "rating", "ci_lo", "ci_hi"]))
    header = alt.Header(labelAngle=0, labelOrient="top", labelAnchor="start", labelFontWeight="bold")
    st.altair_chart(chart.properties(width=640).facet(row=alt.Row("golden_set:N", title=None, header=header))
                    .resolve_scale(y="independent"))


@st.cache_data(show_spinner="Ranking models ...", max_entries=32)
def _cached_ratings(_data: LeaderboardData, _labels: Labels, golden_key: str, cache_key: tuple) -> pd.DataFrame:
    # The store's state and the filters (`cache_key`) decide the pair counts, so the (underscored, unhashed)
    # data need not be part of the key.
    return golden_set_ratings(_data.pairs, _labels, golden_key)


def show_leaderboard(db: StoreLocation, index: LeaderboardData, labels: Labels, state: tuple) -> None:
    """Draw the leaderboard page: `index` (the unfiltered read) gives the filters' choices."""
    st.title("Which fine-tune beats its base?")
    filters = _filters(index, labels)
    data = index if filters == LeaderboardFilter() else load_leaderboard(db, filters, state)
    if data is None:
        return
    shown = leaderboard_rows(data, labels, load_human_win_rates(db))
    if shown.empty:
        st.info("No run matches these filters.")
        return
    _table(shown.sort_values(["golden_set", "win_rate"], ascending=[True, False], na_position="last"))
    # The ranking pools every run passing the filters (counted in the store), not only the newest per model.
    _ranking(data, labels, shown, (str(db), state, filters))
