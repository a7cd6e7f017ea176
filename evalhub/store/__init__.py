"""The results store: a DuckDB file. This package is the only place in evalhub that speaks SQL.

Writers open the file briefly, write one run in one transaction, and close it, so readers (the app) get
their turn; readers open it read-only.
"""

from evalhub.store._connect import default_db_path, read_connection, write_connection
from evalhub.store._export import export_parquet
from evalhub.store._training import save_training_run
from evalhub.store._runs import list_runs, load_run, run_exists, save_run
from evalhub.store._leaderboard import read_leaderboard, read_run

__all__ = ["default_db_path", "read_connection", "write_connection", "save_run", "list_runs", "load_run", "run_exists",
           "export_parquet", "save_training_run",
           "read_leaderboard", "read_run"]
