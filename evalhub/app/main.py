"""The evalhub leaderboard's Streamlit script: `evalhub app` runs it (bound to 127.0.0.1), and so does
`streamlit run app.py` at the repository root, which only hands over to this file.

It ships inside the package, so an installed evalhub (a wheel, no source tree) can start the app. It reads
the store named by EVALHUB_DB (a DuckDB file or a PostgreSQL URL; or ./evalhub.duckdb, or the sidebar's
field) through short-lived read-only connections, so a running `evalhub compare` can always write its run.
The leaderboard aggregates in the store. Four pages: the leaderboard (the arenas listed under it), one run's
details (`?run=RUN_ID` links straight to it), one arena's ratings, win-rate matrix and pairs, and the blind
Review page, where reviewers vote on a run's items or an arena pair's (its only write: one vote, one
transaction).
"""

import streamlit as st

from evalhub.app.arena_page import ARENA_PAGE, load_arenas, show_arena_list, show_arenas
from evalhub.app.labels import store_labels
from evalhub.app.leaderboard_page import LEADERBOARD_PAGE, RUN_PAGE, show_leaderboard
from evalhub.app.loading import load_human, load_leaderboard, load_run, load_run_choices, state_of
from evalhub.app.review_page import REVIEW_PAGE, show_review
from evalhub.app.run_page import show_run
from evalhub.errors import UserError
from evalhub.store import default_db_path, location

st.set_page_config(page_title="evalhub leaderboard", page_icon="⚖️", layout="wide")


def _store():
    # The default shows no password: `evalhub app` hands a URL's password over in PGPASSWORD.
    name = st.sidebar.text_input("Store", value=str(default_db_path()), key="db",
                                 help="A DuckDB file or a postgresql:// URL (default: $EVALHUB_DB)")
    try:
        return location(name)
    except UserError as error:
        st.error(str(error))
        return None


db = _store()
state = state_of(db) if db is not None else None
index = load_leaderboard(db, state=state) if state is not None else None
if index is not None:
    labels = store_labels(index.models, index.golden_sets)
    if "page" not in st.session_state and st.query_params.get("run"):  # a link straight to a run
        if st.query_params["run"] in {choice.run_id for choice in load_run_choices(db, state)}:
            st.session_state["page"], st.session_state["run_id"] = RUN_PAGE, st.query_params["run"]
    page = st.sidebar.radio("Page", [LEADERBOARD_PAGE, RUN_PAGE, ARENA_PAGE, REVIEW_PAGE], key="page")
    if page == RUN_PAGE:
        runs = {choice.run_id: choice for choice in load_run_choices(db, state)}
        if st.session_state.get("run_id") not in runs:  # another store was picked, or a link named an unknown run
            st.session_state.pop("run_id", None)
        if runs:
            run_id = st.sidebar.selectbox(
                "Run", list(runs), key="run_id",
                format_func=lambda r: f"{labels.models[runs[r].tuned_id]} vs {labels.models[runs[r].base_id]}"
                                      f" · {runs[r].created_at:%Y-%m-%d %H:%M} · {r}")
            st.query_params["run"] = run_id
            detail = load_run(db, run_id, state)
            if detail is not None:
                show_run(detail, labels, load_human(db, run_id))
    elif page == ARENA_PAGE:
        st.query_params.pop("run", None)
        show_arenas(db, state)
    elif page == REVIEW_PAGE:  # blind: nothing on it names a model
        st.query_params.pop("run", None)
        show_review(db, load_run_choices(db, state), load_arenas(db, state))
    else:
        st.query_params.pop("run", None)
        show_leaderboard(db, index, labels, state)
        show_arena_list(db, state)
elif state is not None:  # a store of arenas only: no leaderboard of runs yet
    show_arenas(db, state, hint=False)
