"""The results store: a DuckDB file (one machine, the default) or a PostgreSQL database (a team's shared
store). This package is the only place in evalhub that speaks SQL; `_engine` is the only place that knows
how the two engines differ.

Writers write one run in one transaction (and on DuckDB open the file briefly, so readers get their turn);
readers open read-only connections, on PostgreSQL one snapshot that never blocks a writer.
"""

from evalhub.store._calibrations import latest_calibrations, save_calibration
from evalhub.store._connect import (check_reachable, default_db_path, migrate, read_connection, store_exists,
                                   write_connection)
from evalhub.store._export import export_parquet
from evalhub.store._import import ImportResult, import_runs
from evalhub.store._location import StoreLocation, location
from evalhub.store._training import save_training_run
from evalhub.store._runs import list_runs, load_run, run_exists, save_run, save_runs
from evalhub.store._leaderboard import (GoldenSetCounts, ItemOrders, LeaderboardData, LeaderboardFilter, PairCounts,
                                       RunChoice, RunDetail, StoredGeneration, StoredJudgment, StoredModel, StoredRun,
                                       read_leaderboard, read_run, read_run_choices, store_state)
from evalhub.store._arenas import list_arenas, load_arena
from evalhub.store._tags import list_tags
from evalhub.store._human import (HumanVote, arena_pair_answers, arena_pair_verdicts, compare_votes, judge_item_verdicts,
                                 pair_key, record_vote, record_votes, run_answers, run_items, votes_for_run)

__all__ = ["latest_calibrations", "save_calibration", "default_db_path", "read_connection", "write_connection", "save_run", "list_runs", "load_run", "run_exists",
           "export_parquet", "save_training_run",
           "read_leaderboard", "read_run",
           "StoreLocation", "location", "store_exists", "check_reachable", "migrate", "save_runs", "import_runs", "ImportResult", "LeaderboardFilter",
           # what the app reads (evalhub/app imports the store only through these)
           "GoldenSetCounts", "ItemOrders", "LeaderboardData", "PairCounts", "RunChoice", "RunDetail", "StoredGeneration",
           "StoredJudgment", "StoredModel", "StoredRun", "read_run_choices", "store_state", "list_arenas", "load_arena",
           "list_tags",
           # blind human review (the Review page, `evalhub review`)
           "HumanVote", "arena_pair_answers", "arena_pair_verdicts", "pair_key", "compare_votes", "judge_item_verdicts", "record_vote", "record_votes", "run_answers", "run_items", "votes_for_run"]
