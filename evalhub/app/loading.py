"""Reading the store from the app: cached per store state, with a how-to-fill-it hint instead of a
traceback when the store is missing or empty."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from evalhub.errors import UserError
from evalhub.store import read_leaderboard, read_run
from evalhub.store._leaderboard import LeaderboardData, RunDetail


def fill_hint(db: Path) -> str:
    return (f"No results in `{db}` yet. Fill it with the offline demo: `make demo` (or `evalhub demo --db {db}`), "
            f"or compare your own models: `evalhub compare BASE TUNED --golden GOLDEN.jsonl --db {db}`. "
            "Then reload this page.")


def _store_state(db: Path) -> tuple:
    """Changes whenever a writer commits (the file or its write-ahead log changes), so cached reads are
    refreshed after a new run lands and reused otherwise: the app does not hold the file between reruns."""
    files = [db, db.with_name(db.name + ".wal")]
    return tuple((f.stat().st_mtime_ns, f.stat().st_size) if f.exists() else None for f in files)


@st.cache_data(show_spinner=False, max_entries=4)
def _leaderboard(db: str, state: tuple) -> LeaderboardData:
    return read_leaderboard(Path(db))


@st.cache_data(show_spinner=False, max_entries=16)
def _run(db: str, run_id: str, state: tuple) -> RunDetail:
    return read_run(run_id, Path(db))


def load_leaderboard(db: Path) -> LeaderboardData | None:
    """The store's runs, or None after telling the user how to fill a missing or empty store (or what is
    wrong with the file)."""
    if not db.exists():
        st.info(fill_hint(db))
        return None
    try:
        data = _leaderboard(str(db), _store_state(db))
    except UserError as error:
        st.error(str(error))
        return None
    if not data.runs:
        st.info(fill_hint(db))
        return None
    return data


def load_run(db: Path, run_id: str) -> RunDetail | None:
    try:
        return _run(str(db), run_id, _store_state(db))
    except UserError as error:
        st.error(str(error))
        return None
