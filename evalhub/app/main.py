"""The evalhub leaderboard's Streamlit script: `evalhub app` runs it (bound to 127.0.0.1), and so does
`streamlit run app.py` at the repository root, which only hands over to this file.

It ships inside the package, so an installed evalhub (a wheel, no source tree) can start the app. It reads
the DuckDB store named by EVALHUB_DB (or ./evalhub.duckdb, or the sidebar's field) through short-lived
read-only connections, so a running `evalhub compare` can always write its run. Two pages: the leaderboard,
and one run's details (`?run=RUN_ID` links straight to it).
"""

from pathlib import Path

import streamlit as st

from evalhub.app.labels import run_labels
from evalhub.app.leaderboard_page import LEADERBOARD_PAGE, RUN_PAGE, show_leaderboard
from evalhub.app.loading import load_leaderboard, load_run
from evalhub.app.run_page import show_run
from evalhub.store import default_db_path

st.set_page_config(page_title="evalhub leaderboard", page_icon="⚖️", layout="wide")

db = Path(st.sidebar.text_input("Store", value=str(default_db_path()), key="db",
                                help="The DuckDB file `evalhub compare --db` writes (default: $EVALHUB_DB)"))
data = load_leaderboard(db)
if data is not None:
    labels = run_labels(data.runs)
    runs = {run.run_id: run for run in data.runs}
    if st.session_state.get("run_id") not in runs:  # another store was picked, or a link named an unknown run
        st.session_state.pop("run_id", None)
    if "page" not in st.session_state and st.query_params.get("run") in runs:
        st.session_state["page"], st.session_state["run_id"] = RUN_PAGE, st.query_params["run"]

    page = st.sidebar.radio("Page", [LEADERBOARD_PAGE, RUN_PAGE], key="page")
    if page == RUN_PAGE:
        run_id = st.sidebar.selectbox(
            "Run", list(runs), key="run_id",
            format_func=lambda r: f"{labels.models[runs[r].tuned.model_id]} vs {labels.models[runs[r].base.model_id]}"
                                  f" · {runs[r].created_at:%Y-%m-%d %H:%M} · {r}")
        st.query_params["run"] = run_id
        detail = load_run(db, run_id)
        if detail is not None:
            show_run(detail, labels)
    else:
        st.query_params.pop("run", None)
        show_leaderboard(data, labels)
