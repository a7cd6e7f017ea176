"""The Streamlit leaderboard's building blocks; `app.py` at the repository root is the page script.

Pure functions turn store records into tables (testable without Streamlit); the `*_page` modules draw.
Model outputs and judge reasons are always drawn as plain text (st.text, dataframes), never as Markdown
or HTML: an answer holding `<script>` is data to read, not markup to run.
"""
