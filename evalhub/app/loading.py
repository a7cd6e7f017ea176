"""Reading the store from the app: cached per store state, with a how-to-fill-it hint instead of a
traceback when the store is missing or empty."""

from __future__ import annotations

import streamlit as st

from evalhub.errors import UserError
from evalhub.store import StoreLocation, read_leaderboard, read_run, store_exists
from evalhub.store import LeaderboardData, LeaderboardFilter, RunChoice, RunDetail, read_run_choices, store_state


def fill_hint(db: StoreLocation) -> str:
    return (f"No results in `{db}` yet. Fill it with the offline demo: `make demo` (or `evalhub demo --db {db}`), "
            f"or compare your own models: `evalhub compare BASE TUNED --golden GOLDEN.jsonl --db {db}`. "
            "Then reload this page.")


# The location travels unhashed (`_where`: it may hold a password); its printable form and the store's
# state are the cache key.
@st.cache_data(show_spinner=False, max_entries=16)
def _leaderboard(_where: StoreLocation, name: str, state: tuple, filters: LeaderboardFilter) -> LeaderboardData:
    return read_leaderboard(_where, filters)


@st.cache_data(show_spinner=False, max_entries=4)
def _choices(_where: StoreLocation, name: str, state: tuple) -> list[RunChoice]:
    return read_run_choices(_where)


@st.cache_data(show_spinner=False, max_entries=16)
def _run(_where: StoreLocation, name: str, run_id: str, state: tuple) -> RunDetail:
    return read_run(run_id, _where)


def state_of(db: StoreLocation) -> tuple | None:
    """The store's state, or None after telling the user what is wrong (missing store, bad URL, ...)."""
    if not store_exists(db):
        st.info(fill_hint(db))
        return None
    try:
        return store_state(db)
    except UserError as error:
        st.error(str(error))
        return None


def load_leaderboard(db: StoreLocation, filters: LeaderboardFilter | None = None,
                     state: tuple | None = None) -> LeaderboardData | None:
    """The leaderboard passing `filters`, or None after telling the user how to fill a missing or empty store
    (or what is wrong with it)."""
    state = state if state is not None else state_of(db)
    if state is None:
        return None
    try:
        data = _leaderboard(db, str(db), state, filters or LeaderboardFilter())
    except UserError as error:
        st.error(str(error))
        return None
    if not data.run_count:
        st.info(fill_hint(db))
        return None
    return data


def load_run_choices(db: StoreLocation, state: tuple) -> list[RunChoice]:
    try:
        return _choices(db, str(db), state)
    except UserError as error:
        st.error(str(error))
        return []


def load_run(db: StoreLocation, run_id: str, state: tuple) -> RunDetail | None:
    try:
        return _run(db, str(db), run_id, state)
    except UserError as error:
        st.error(str(error))
        return None


def load_human(db: StoreLocation, run_id: str) -> dict | None:
    """The run's human-vote summary (None when nobody voted), read fresh: reviewers vote while the page is open."""
    from evalhub.human import human_summary

    try:
        return human_summary(run_id, db)
    except UserError as error:
        st.error(str(error))
        return None


def load_human_win_rates(db: StoreLocation) -> dict[tuple[str, str], float]:
    """The leaderboard's human column, read fresh (the votes are few; a PostgreSQL store's state does not
    change with them)."""
    from evalhub.app.leaderboard_table import human_win_rates
    from evalhub.store import compare_votes

    try:
        return human_win_rates(compare_votes(db))
    except UserError as error:
        st.error(str(error))
        return {}
