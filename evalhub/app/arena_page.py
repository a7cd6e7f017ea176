"""Arenas in the app: a list under the leaderboard, and a page per arena with its Bradley-Terry ratings (95% CI
bars), the pairwise win-rate matrix as a heatmap, the pairs that differ after Holm's correction, and what the
reviewers' blind votes (the Review page) say per pair."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from evalhub.errors import UserError
from evalhub.store import StoreLocation
from evalhub.store import list_arenas, load_arena

ARENA_PAGE = "Arenas"


@st.cache_data(show_spinner=False, max_entries=4)
def _arenas(_where: StoreLocation, name: str, state: tuple) -> list[dict]:
    return list_arenas(_where)


@st.cache_data(show_spinner=False, max_entries=16)
def _arena(_where: StoreLocation, name: str, run_id: str, state: tuple) -> dict:
    return load_arena(run_id, _where)


def load_arenas(db: StoreLocation, state: tuple) -> list[dict]:
    """The store's arenas, newest first ([] for a store that cannot be read: the page above says why)."""
    try:
        return _arenas(db, str(db), state)
    except UserError:
        return []


def short_names(models: list[str]) -> dict[str, str]:
    """Each model's folder name when those are unique in the arena, else the name as given."""
    short = {m: Path(m).name or m for m in models}
    return short if len(set(short.values())) == len(short) else {m: m for m in models}


def _fmt(value, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def show_arena_list(db: StoreLocation, state: tuple) -> None:
    """The arenas under the leaderboard: one row each, with its leader."""
    arenas = _arenas(db, str(db), state)
    if not arenas:
        return
    st.subheader("Arenas")
    st.caption("Many models judged pair by pair on one golden set; the page 'Arenas' shows each one.")
    rows = []
    for arena in arenas:
        summary = arena["summary"]
        names = short_names(summary["models"])
        leader = next((r for r in summary["ratings"] if r["rating"] is not None), None)
        rows.append({"date": arena["created_at"], "arena": arena["run_id"], "models": len(summary["models"]),
                     "judge": arena["judge"], "golden set": ", ".join(Path(g).name for g in arena["golden"]),
                     "leader": names[leader["model"]] if leader else "–",
                     "rating": leader["rating"] if leader else None,
                     "95% CI": f"[{leader['ci'][0]:.0f}, {leader['ci'][1]:.0f}]" if leader and leader["ci"] else "–"})
    st.dataframe(pd.DataFrame(rows), hide_index=True,
                 column_config={"rating": st.column_config.NumberColumn("Rating (Elo)", format="%.0f")})


def show_arenas(db: StoreLocation, state: tuple, hint: bool = True) -> None:
    """The arena page: pick an arena in the sidebar. `hint`: say how to run one when the store has none."""
    try:
        arenas = {a["run_id"]: a for a in _arenas(db, str(db), state)}
    except UserError as error:  # a file that is no store: the leaderboard above has said so already
        if hint:
            st.error(str(error))
        return
    if not arenas:
        if hint:
            st.info("No arenas in this store yet: `evalhub arena MODEL MODEL MODEL --golden FILE --judge JUDGE` "
                    "ranks several models (e.g. adapters of one base) pair by pair.")
        return
    run_id = st.sidebar.selectbox("Arena", list(arenas), key="arena_id",
                                  format_func=lambda r: f"{arenas[r]['created_at']:%Y-%m-%d %H:%M} · {r}"
                                  if hasattr(arenas[r]["created_at"], "strftime") else r)
    arena = _arena(db, str(db), run_id, state)
    summary = arena["summary"]
    names = short_names(summary["models"])
    stats = summary["judge_stats"]
    st.header(f"Arena {run_id}")
    st.caption(f"{len(summary['models'])} models · judge {stats.get('judge')} · golden "
               f"{', '.join(arena['golden'])} · {stats.get('calls', 0)} judge calls · "
               f"{stats.get('scored', 0)} pair-items scored · position consistency "
               f"{_fmt(stats.get('position_consistency'), '.2f')} · parse failures {stats.get('parse_failures', 0)}"
               f" · cost {_fmt(stats.get('cost_usd'), '.4f')} USD")
    for warning in summary.get("warnings", []):
        st.warning(warning)

    st.subheader("Ratings")
    ratings = pd.DataFrame([{"model": names[r["model"]], "path": arena["paths"].get(r["model"], r["model"]),
                             "rank": r["rank"], "rating": r["rating"],
                             "ci_lo": r["ci"][0] if r["ci"] else None, "ci_hi": r["ci"][1] if r["ci"] else None,
                             "comparisons": r["comparisons"]} for r in summary["ratings"]])
    rated = ratings.dropna(subset=["rating"])
    if not rated.empty:
        order = list(rated.sort_values("rating", ascending=False)["model"])
        base = alt.Chart(rated).encode(y=alt.Y("model:N", sort=order, title=None))
        bars = base.mark_rule(strokeWidth=3).encode(x=alt.X("ci_lo:Q", title="Bradley-Terry rating (Elo), 95% CI",
                                                            scale=alt.Scale(zero=False)), x2="ci_hi:Q")
        points = base.mark_point(filled=True, size=80).encode(
            x="rating:Q", tooltip=["model", "rank", alt.Tooltip("rating:Q", format=".0f"),
                                   alt.Tooltip("ci_lo:Q", format=".0f"), alt.Tooltip("ci_hi:Q", format=".0f"),
                                   "comparisons"])
        st.altair_chart(bars + points)
    st.dataframe(ratings, hide_index=True, column_config={
        "rating": st.column_config.NumberColumn("Rating", format="%.0f"),
        "ci_lo": st.column_config.NumberColumn("95% CI low", format="%.0f"),
        "ci_hi": st.column_config.NumberColumn("95% CI high", format="%.0f"),
        "rank": st.column_config.NumberColumn("Rank", help="1 + models whose CI lies wholly above this one's")})

    st.subheader("Win rates")
    cells = []
    for p in summary["pairs"]:
        ci = p["win_rate_ci"]
        for row, column, rate, interval in ((p["a"], p["b"], p["win_rate"], ci),
                                            (p["b"], p["a"], None if p["win_rate"] is None else 1 - p["win_rate"],
                                             None if not ci else [1 - ci[1], 1 - ci[0]])):
            cells.append({"model": names[row], "opponent": names[column], "win_rate": rate,
                          "label": _fmt(rate, ".2f"), "ci": "–" if not interval else
                          f"[{interval[0]:.2f}, {interval[1]:.2f}]", "significant": p["significant"]})
    matrix = pd.DataFrame(cells)
    if not matrix.empty:
        order = [names[m] for m in summary["models"]]
        heat = alt.Chart(matrix).encode(x=alt.X("opponent:N", sort=order, title="against"),
                                        y=alt.Y("model:N", sort=order, title="model (row) wins"))
        st.altair_chart(heat.mark_rect().encode(
            color=alt.Color("win_rate:Q", scale=alt.Scale(scheme="redblue", domain=[0, 1]), title="win rate"),
            tooltip=["model", "opponent", alt.Tooltip("win_rate:Q", format=".3f"), "ci", "significant"])
            + heat.mark_text().encode(text="label:N"))
    pairs = pd.DataFrame([{"a": names[p["a"]], "b": names[p["b"]], "wins": p["wins"], "ties": p["ties"],
                           "losses": p["losses"], "win_rate": p["win_rate"],
                           "95% CI": "–" if not p["win_rate_ci"] else
                           f"[{p['win_rate_ci'][0]:.3f}, {p['win_rate_ci'][1]:.3f}]",
                           "p": p["p_value"], "p (Holm)": p.get("p_holm"), "differs": p["significant"]}
                          for p in summary["pairs"]])
    st.caption("Counts from a's side; items whose two orders disagree are ties. 'differs': Holm-adjusted sign "
               "test below the arena's alpha.")
    st.dataframe(pairs, hide_index=True, column_config={
        "win_rate": st.column_config.NumberColumn("Win rate", format="%.3f"),
        "p": st.column_config.NumberColumn(format="%.3g"), "p (Holm)": st.column_config.NumberColumn(format="%.3g")})
    _human_pairs(db, run_id, summary, names)


def _human_pairs(db: StoreLocation, run_id: str, summary: dict, names: dict[str, str]) -> None:
    """Per pair, the reviewers' votes (read fresh: they vote while the page is open): the human win rate of a
    over b with its Wilson CI, the reviewers' agreement, and each judge's agreement with them."""
    from evalhub.human import arena_human_summary

    st.subheader("Human review")
    pairs = arena_human_summary(run_id, [(p["a"], p["b"]) for p in summary["pairs"]], db)
    if not pairs:
        st.caption("Nobody has voted on this arena yet: the Review page collects blind votes pair by pair.")
        return
    rows = []
    for pair in pairs:
        lo, hi = pair["win_rate_ci"] or (None, None)
        row = {"a": names[pair["a"]], "b": names[pair["b"]], "votes": pair["n_votes"], "items": pair["n_items"],
               "reviewers": len(pair["reviewers"]), "human_win_rate": pair["win_rate"],
               "95% CI": "–" if lo is None else f"[{lo:.3f}, {hi:.3f}]",
               "reviewer_kappa": pair["reviewer_agreement"]["kappa"]}
        for judge, agreement in pair["judge_agreement"].items():
            row[f"{judge}: agreement"] = agreement["accuracy"]
            row[f"{judge}: kappa"] = agreement["kappa"]
        rows.append(row)
    st.caption("From a's side: each item's verdict is its reviewers' majority (a tie counts half); a judge's "
               "agreement and Cohen's kappa are over the items both it and the reviewers scored.")
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
        "human_win_rate": st.column_config.NumberColumn("Human win rate", format="%.3f"),
        "reviewer_kappa": st.column_config.NumberColumn("Reviewer agreement (Fleiss' kappa)", format="%.3f")})
