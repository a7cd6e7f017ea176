"""The Review page: a reviewer votes blind on a run's golden items, or on one pair of an arena's, one at a time.

The reviewer is the user the authenticating proxy names (review_queue.PROXY_HEADERS), or a name typed once per
browser session. Each item shows its prompt (or conversation) and the two answers as "Answer 1" and "Answer 2",
in an order hashed from the reviewer and the item; the ideal answer waits in a closed expander. Model names,
paths and judge verdicts are never drawn, and every text from the store goes through st.text, never Markdown.
A vote is one `record_vote` call, its own transaction: the app's only write. An arena pair's votes are stored
with `pair` set (store.pair_key) and from its first model's side, the candidate's place in a compare run;
pairs are offered as "pair 1 of 3", never by their models.
"""

from __future__ import annotations

import streamlit as st

from evalhub.app.review_queue import (CHOICES, PROXY_HEADERS, SAMPLE, TRIAGE, Item, pair_token, proxy_user, review_queue,
                                     shown_first, verdict_of)
from evalhub.app.text import md_literal
from evalhub.errors import UserError
from evalhub.store import (HumanVote, RunChoice, StoreLocation, arena_pair_answers, arena_pair_verdicts,
                           judge_item_verdicts, pair_key, record_vote, run_answers, votes_for_run)

REVIEW_PAGE = "Review"


# A stored run's answers and judge verdicts never change, so they are cached by store and run alone. The
# location travels unhashed (`_where`: it may hold a password), its printable form is the key.
@st.cache_data(show_spinner=False, max_entries=8)
def _answers(_where: StoreLocation, name: str, run_id: str) -> dict[Item, dict]:
    return run_answers(run_id, _where)


@st.cache_data(show_spinner=False, max_entries=8)
def _judges(_where: StoreLocation, name: str, run_id: str) -> dict:
    return judge_item_verdicts(run_id, _where)


@st.cache_data(show_spinner=False, max_entries=8)
def _pair_answers(_where: StoreLocation, name: str, arena_id: str, a: str, b: str) -> dict[Item, dict]:
    return arena_pair_answers(arena_id, a, b, _where)


@st.cache_data(show_spinner=False, max_entries=8)
def _pair_judges(_where: StoreLocation, name: str, arena_id: str, a: str, b: str) -> dict:
    return arena_pair_verdicts(arena_id, a, b, _where)


def _reviewer() -> str | None:
    """The proxy's user, else the name typed in this browser session (None until one is typed)."""
    user = proxy_user({name: st.context.headers.get(name) or "" for name in PROXY_HEADERS})
    if user:
        st.sidebar.caption(f"Reviewing as {md_literal(user)} (signed in through the proxy)")
        return user
    if st.session_state.get("reviewer"):
        st.sidebar.caption(f"Reviewing as {md_literal(st.session_state['reviewer'])}")
        return st.session_state["reviewer"]
    with st.form("reviewer_form"):
        name = st.text_input("Your name", key="reviewer_typed",
                             help="Stored with each vote; asked once per browser session")
        if st.form_submit_button("Start reviewing") and name.strip():
            st.session_state["reviewer"] = name.strip()
            st.rerun()
    st.info("Type your name to start reviewing.")
    return None


def _vote(db: StoreLocation, run_id: str, pair: str, item: Item, reviewer: str, choice: str, first: str,
          note_key: str) -> None:
    """A button's callback: one vote, in its own transaction, before the page is drawn again."""
    try:
        record_vote(HumanVote(run_id=run_id, pair=pair, golden_file=item[0], item_id=item[1], reviewer=reviewer,
                              verdict=verdict_of(choice, first), shown_first=first,
                              note=(st.session_state.get(note_key) or "").strip() or None), db)
    except UserError as error:
        st.session_state["review_error"] = str(error)


def _text(where, text: str | None, missing: str) -> None:
    where.text(text if text else missing)


def _stamp(created_at) -> str:
    return f"{created_at:%Y-%m-%d %H:%M}" if hasattr(created_at, "strftime") else str(created_at)


def show_review(db: StoreLocation, runs: list[RunChoice], arenas: list[dict] | None = None) -> None:
    """Draw the Review page for the store's compare runs (`runs`, newest first) and arenas (store.list_arenas)."""
    st.title("Blind review")
    reviewer = _reviewer()
    if reviewer is None:
        return
    arenas = [arena for arena in arenas or [] if arena["summary"].get("pairs")]
    if not runs and not arenas:
        st.info("No run or arena to review yet.")
        return
    source = "a compare run"
    if arenas:
        source = st.sidebar.radio("Review", ["a compare run", "an arena pair"] if runs else ["an arena pair"],
                                  key="review_source")
    if source == "an arena pair":
        # Arenas and pairs are named by date, id and position only: a model's name would unblind the reviewer.
        choices = {arena["run_id"]: arena for arena in arenas}
        arena_id = st.sidebar.selectbox("Arena to review", list(choices), key="review_arena",
                                        format_func=lambda r: f"{_stamp(choices[r]['created_at'])} · {r}")
        pairs = choices[arena_id]["summary"]["pairs"]
        index = st.sidebar.selectbox("Pair", list(range(len(pairs))), key=f"review_pair:{arena_id}",
                                     format_func=lambda i: f"pair {i + 1} of {len(pairs)}")
        a, b = pairs[index]["a"], pairs[index]["b"]
        _review(db, reviewer, arena_id, pair_key(a, b), _pair_answers(db, str(db), arena_id, a, b),
                _pair_judges(db, str(db), arena_id, a, b), "This pair has no items both models answered, so there "
                                                           "is nothing to review.")
        return
    # Runs are named by date and id only: a model's name would tell the reviewer which answer is whose.
    choices = {run.run_id: run for run in runs}
    run_id = st.sidebar.selectbox("Run to review", list(choices), key="review_run",
                                  format_func=lambda r: f"{choices[r].created_at:%Y-%m-%d %H:%M} · {r}")
    _review(db, reviewer, run_id, "", _answers(db, str(db), run_id), _judges(db, str(db), run_id),
            "This run has no items both models answered, so there is nothing to review.")


def _review(db: StoreLocation, reviewer: str, run_id: str, pair: str, answers: dict[Item, dict], judges: dict,
            nothing: str) -> None:
    """Triage, progress and the next item of one compare run (pair '') or arena pair, with its vote buttons."""
    if not answers:
        st.info(nothing)
        return
    files = sorted({golden_file for golden_file, _ in answers})
    if len(files) > 1:
        names = {path: path.replace("\\", "/").rsplit("/", 1)[-1] for path in files}
        picked = st.radio("Golden set", ["all", *files], horizontal=True, key=f"review_golden:{run_id}:{pair}",
                          format_func=lambda p: names.get(p, p))
        files = files if picked == "all" else [picked]
    controls = st.columns([4, 1, 1], vertical_alignment="bottom")
    mode = controls[0].radio("Items", TRIAGE, horizontal=True, key="review_triage",
                             help="Disputed: the judge's two orders disagree, or a panel's judges do. "
                                  "Judges against reviewers: the judge differs from earlier reviewers' verdict.")
    seed = size = 0
    if mode == SAMPLE:
        seed = int(controls[1].number_input("Seed", min_value=0, value=0, step=1, key="review_seed"))
        size = int(controls[2].number_input("Items", min_value=1, value=20, step=1, key="review_size"))
    votes = votes_for_run(run_id, db, pair=pair)  # read fresh: others vote meanwhile
    items = [item for item in answers if item[0] in files]
    queue = review_queue(mode, items, judges, votes, reviewer, seed=seed, size=size)
    st.progress(queue.voted / len(queue.selected) if queue.selected else 1.0,
                text=f"{queue.voted} voted / {len(queue.selected)} to review")
    if error := st.session_state.pop("review_error", None):
        st.error(error)
    if not queue.todo:
        st.success("Nothing left to review here." if queue.selected else "No item matches this choice.")
        return
    item = queue.todo[0]
    entry, first = answers[item], shown_first(reviewer, run_id, item, pair)
    shown = (entry["candidate"], entry["baseline"]) if first == "candidate" else (entry["baseline"], entry["candidate"])
    with st.container(border=True):
        st.caption("Prompt")
        _text(st, entry["prompt"], "(no prompt stored)")
        with st.expander("Ideal answer", expanded=False):
            _text(st, entry["ideal"], "(this run did not record the ideal answer)")
        for column, title, text in zip(st.columns(2), ("Answer 1", "Answer 2"), shown):
            column.subheader(title)
            _text(column, text, "(no answer)")
    # Widget keys reach the browser: an arena pair is named in them by a hash, never by its models' names.
    note_key = f"review_note:{run_id}:{item[0]}:{item[1]}" if not pair else \
        f"review_note:{run_id}:{pair_token(pair)}:{item[0]}:{item[1]}"
    st.text_input("Note (optional)", key=note_key)
    for column, (choice, label) in zip(st.columns(len(CHOICES)), CHOICES.items()):
        column.button(label, key=f"review_vote_{choice}", width="stretch", on_click=_vote,
                      args=(db, run_id, pair, item, reviewer, choice, first, note_key))
