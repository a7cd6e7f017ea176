"""The stages of a comparison, each turning typed inputs into a checkpointable result, and the summary and
store record built from them. `evalhub.compare` runs them in order; nothing here decides that order."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from evalhub.contracts import BenchmarkDelta, CompareRequest, JudgeStats, PerplexityDelta, RunSummary
from evalhub.errors import UserError
from evalhub.records import GoldenItem, Generation, RunRecord

Say = Callable[[str], None]
Answers = dict[str, dict[str, Generation]]


# ---------------------------------------------------------------- inputs

def namespaced_items(golden: dict[str, list[GoldenItem]]) -> list[GoldenItem]:
    """Every golden item, its id prefixed by its set's index ("0:item-7"), so the runs's records know which
    set an item came from. An id in two sets is refused: both would be judged, and one prompt counted twice."""
    first_seen: dict[str, str] = {}
    for path, items in golden.items():
        for item in items:
            if item.id in first_seen:
                raise UserError(f"item id {item.id!r} is in both {first_seen[item.id]} and {path}; give the items "
                                "distinct ids (or drop one of the sets) so no item is judged twice")
            first_seen[item.id] = path
    return [replace(item, id=f"{index}:{item.id}") for index, items in enumerate(golden.values()) for item in items]


def split_key(key: str, golden_files: tuple[str, ...]) -> tuple[str, str]:
    index, _, item_id = key.partition(":")
    if index.isdigit() and item_id:
        return golden_files[int(index)], item_id
    return "canaries", key


def contamination(request: CompareRequest, golden: dict[str, list[GoldenItem]], say: Say) -> list[dict]:
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
        say(f"warning: {len(findings)} golden item(s) overlap the training data; see the report's config")
    return findings


# ---------------------------------------------------------------- stages

def generate(request: CompareRequest, items: list[GoldenItem], done: Answers,
             save: Callable[[str, dict[str, Generation]], None]) -> Answers:
    from evalhub.generate import backend_options, generate_answers

    return generate_answers(base=request.base, tuned=request.tuned, items=items, settings=request.decoding,
                            backend=request.backend, options=backend_options(request.backend_options),
                            done=done, on_answers=save, adapter_base=request.adapter_base)


def report_failed_generations(answers: Answers, say: Say) -> None:
    """Items the models could not answer (a prompt too long for the context, a server error) are not judged:
    say how many, and why, so a shrunken golden set never goes unnoticed."""
    for role, by_id in answers.items():
        failed = [g for g in by_id.values() if g.status != "ok"]
        if failed:
            reasons = sorted({g.reason or "no reason given" for g in failed})
            more = f"; and {len(reasons) - 1} other reason(s), see the report" if len(reasons) > 1 else ""
            say(f"warning: {len(failed)} of {len(by_id)} {role} answers failed and their items are not judged "
                f"({reasons[0]}{more})")


def judge(request: CompareRequest, judge_name: str, items: list[GoldenItem], answers: Answers) -> dict:
    from evalhub.judge import judge_options, judge_pairs

    outcome = judge_pairs(items=items, judge=list(request.judges) or judge_name,
                          options=judge_options(request.judge_options), golden_file="",
                          base=answers["base"], tuned=answers["tuned"])

    def by_golden_file(rows: list[dict]) -> list[dict]:
        split = []
        for row in rows:
            golden_file, item_id = split_key(row["item_id"], request.golden)
            split.append({**row, "golden_file": golden_file, "item_id": item_id})
        return split

    # A panel's `judgments` rows are its verdicts; every judge's own calls go to `panel_judgments`.
    return {"judgments": by_golden_file(outcome.judgments), "stats": outcome.stats,
            "panel_judgments": by_golden_file(outcome.calls) if outcome.panel else []}


def add_calibrations(result: RunSummary, request: CompareRequest, db) -> None:
    """Each judge's latest calibration against human labels with this run's protocol (evalhub judge calibrate),
    where the store holds one, into the summary; the gate's --min-judge-human-agreement reads it."""
    stats = result.judge_stats
    if stats is None or stats.protocol is None:
        return
    from evalhub.contracts import JudgeCalibration
    from evalhub.store import latest_calibrations

    judges = list(stats.judges) if stats.judges else [result.judge]
    found = latest_calibrations([(j, request.judge_options.base_url, stats.protocol.hash) for j in judges if j], db)
    if found:
        stats.calibration = {j: JudgeCalibration(**{k: c.get(k) for k in JudgeCalibration.model_fields})
                             for j, c in found.items()}


def perplexity(request: CompareRequest, texts: dict[str, list[str]]) -> dict:
    from evalhub.generate import backend_options
    from evalhub.perplexity import measure_perplexity

    window = {k: v for k, v in (("window", request.perplexity_window), ("stride", request.perplexity_stride)) if v}
    return {name: {role: asdict(result) for role, result in
                   measure_perplexity(base=request.base, tuned=request.tuned, texts=documents, backend=request.backend,
                                      options=backend_options(request.backend_options), adapter_base=request.adapter_base,
                                      **window).items()}
            for name, documents in texts.items()}


def benchmarks(request: CompareRequest) -> dict:
    from evalhub.forgetting import benchmark_settings, compare_benchmarks

    result = compare_benchmarks(base=request.base, tuned=request.tuned, tasks=list(request.tasks),
                                tasks_path=Path(request.tasks_path) if request.tasks_path else None,
                                backend=request.backend, settings=benchmark_settings(request.forgetting),
                                adapter_base=request.adapter_base)
    return {"tasks": result.tasks, "items": result.items, "lm_eval_version": result.lm_eval_version,
            "settings": result.settings if isinstance(result.settings, dict) else asdict(result.settings)}


def store_training_curves(tuned_ref, db: Path) -> None:
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

def _delta_pct(base: float, tuned: float) -> float | None:
    return 100.0 * (tuned - base) / base if base else None


def _unscored_reason(stats: dict) -> str:
    extra = stats.get("extra", {})
    if extra.get("not_judged_items") == stats["n"]:
        return "every item has a failed generation"
    if stats["parse_failures"]:
        return f"{stats['parse_failures']} judge replies could not be read"
    if extra.get("api_errors"):
        return f"{extra['api_errors']} judge calls failed"
    return "no item got a verdict in both orders"


def summary(run_id: str, base: str, tuned: str, judge_name: str | None, golden_files, judged: dict | None,
            perplexity_results: dict | None, benchmark_results: dict | None) -> RunSummary:
    result = RunSummary(run_id=run_id, base=base, tuned=tuned)
    if judged is not None:
        stats = judged["stats"]
        result.judge, result.golden = judge_name, list(golden_files)
        result.judge_stats = JudgeStats(**{k: v for k, v in stats.items() if k != "extra"})
        if result.judge_stats.scored == 0:
            result.warnings.append(f"no item could be scored ({_unscored_reason(stats)}): "
                                   f"0 of {result.judge_stats.n} items, the win rate is –")
    if perplexity_results is not None:
        result.perplexity = {
            name: PerplexityDelta(base=r["base"]["perplexity"], tuned=r["tuned"]["perplexity"],
                                  delta_pct=_delta_pct(r["base"]["perplexity"], r["tuned"]["perplexity"]),
                                  bpb_base=r["base"]["bits_per_byte"], bpb_tuned=r["tuned"]["bits_per_byte"])
            for name, r in perplexity_results.items()}
    if benchmark_results is not None:
        result.benchmarks = {
            task: BenchmarkDelta(**{key: t.get(key) for key in ("base", "tuned", "delta", "ci", "p_value")},
                                 forgetting=bool(t.get("forgetting")))
            for task, t in benchmark_results["tasks"].items()}
        empty = [task for task, t in result.benchmarks.items() if t.delta is None]
        if empty:
            result.warnings.append(f"no benchmark items scored on {', '.join(empty)}")
    return result


def answers_side_by_side(golden: dict[str, list[GoldenItem]], answers: Answers | None) -> dict[str, dict]:
    if not answers:
        return {}
    side_by_side = {}
    for index, (path, items) in enumerate(golden.items()):
        for item in items:
            key = f"{index}:{item.id}"
            side_by_side[f"{path}::{item.id}"] = {
                "instruction": item.prompt, "ideal": item.output,
                "base": answers["base"][key].output, "tuned": answers["tuned"][key].output}
    return side_by_side


def run_record(run_id, created_at, request: CompareRequest, base_ref, tuned_ref, judge_name, config,
               result: RunSummary, golden, answers: Answers | None, judged, perplexity_results, benchmark_results,
               contamination_findings) -> RunRecord:
    record = RunRecord(run_id=run_id, kind=request.kind, created_at=created_at, base=base_ref, tuned=tuned_ref,
                       config=config, summary=result.to_json(), judge=judge_name, golden=list(request.golden))
    # The golden items travel with the run, so the app shows ideal answers wherever the store is opened.
    record.golden_items = [{"golden_file": path, "item_id": item.id, "instruction": item.instruction,
                            "input": item.input, "output": item.output, "tags": list(item.tags)}
                           for path, items in golden.items() for item in items]
    if answers:
        settings = {**request.decoding.model_dump(mode="json"), "backend": request.backend}
        for role in ("base", "tuned"):
            for key, generation in answers[role].items():
                golden_file, item_id = split_key(key, request.golden)
                record.generations.append((role, golden_file, settings, replace(generation, item_id=item_id)))
    if judged:
        record.judgments = judged["judgments"]
        record.panel_judgments = judged.get("panel_judgments", [])
        for name, value in judged["stats"].get("extra", {}).items():
            numeric = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            record.metrics.append(("judge", name, numeric, None if numeric is not None else {"value": value}))
    if perplexity_results:
        record.perplexity = [{"dataset": name, "role": role, **values, "settings": {"backend": request.backend}}
                             for name, roles in perplexity_results.items() for role, values in roles.items()]
    if benchmark_results:
        for task, t in benchmark_results["tasks"].items():
            ci = t.get("ci") or (None, None)
            record.benchmarks.append({
                "task": task, "metric": t.get("metric", "acc"), "base": t["base"], "tuned": t["tuned"],
                "delta": t["delta"], "ci_lo": ci[0], "ci_hi": ci[1], "p_value": t["p_value"],
                "forgetting": bool(t["forgetting"]), "base_acc_norm": t.get("base_acc_norm"),
                "tuned_acc_norm": t.get("tuned_acc_norm"), "n": t.get("n"), "task_version": str(t.get("task_version")),
                "lm_eval_version": benchmark_results["lm_eval_version"], "settings": benchmark_results["settings"],
                "newly_wrong": t.get("newly_wrong", [])})
        record.benchmark_items = [{key: item.get(key) for key in ("task", "doc_id", "base_correct", "tuned_correct",
                                                                   "base_acc_norm", "tuned_acc_norm")}
                                  for item in benchmark_results["items"]]
    record.metrics.append(("contamination", "overlapping_golden_items", float(len(contamination_findings)),
                           {"findings": contamination_findings} if contamination_findings else None))
    return record


# ---------------------------------------------------------------- the adapter really applies

# A probe when the run has no golden item to probe with: plain text any causal LM can score.
PROBE_TEXT = "The quick brown fox jumps over the lazy dog. Then it runs into the forest and is gone."
# Log-likelihoods (nats, summed over the probe) closer than this are "the same": a trained adapter moves them
# by whole nats, and a LoRA that adds exactly zero leaves them bit-identical.
SAME_LOGPROB_NATS = 1e-4


def check_adapter_trained(request: CompareRequest) -> None:
    """Before anything loads: an adapter whose LoRA B matrices are all zero was initialised and never trained,
    and would make the tuned model equal its base. Stop with a UserError naming it."""
    from evalhub.models import inspect_model
    from evalhub.models.lora_weights import lora_b_all_zero

    if request.backend == "openai":
        return
    info = inspect_model(request.tuned)
    if info.kind == "adapter" and lora_b_all_zero(info.path):
        raise UserError(f"the adapter {info.path} was never trained: every LoRA B matrix is zero, so it adds nothing "
                        "to its base and the comparison would measure the base against itself; pass the trained "
                        "adapter folder (or train it: evalhub train sft)")


def check_adapter_applies(request: CompareRequest, items: list[GoldenItem], say: Say) -> None:
    """Before judging: the tuned model (an adapter on the base) must differ from the base under this backend.
    Score one probe (the first golden item's prompt and ideal answer) with the base and with the adapter; equal
    log-probabilities mean the backend silently serves the base for the tuned model (lm-eval #2432's failure),
    and every 'tuned' result would be the base's. Stop with a UserError naming the adapter and the fallback."""
    from evalhub.generate import backend_options
    from evalhub.models import inspect_model
    from evalhub.perplexity import measure_perplexity

    if request.backend == "openai" or inspect_model(request.tuned).kind != "adapter":
        return
    probe = f"{items[0].prompt}\n{items[0].output}" if items else PROBE_TEXT
    extra = {"adapter_base": request.adapter_base} if getattr(request, "adapter_base", None) else {}
    scores = measure_perplexity(base=request.base, tuned=request.tuned, texts=[probe], backend=request.backend,
                                options=backend_options(request.backend_options), **extra)
    base, tuned = scores["base"], scores["tuned"]
    nats = abs(base.bits_per_byte - tuned.bits_per_byte) * base.bytes * 0.6931471805599453
    if nats < SAME_LOGPROB_NATS:
        from evalhub.generate import resolve_backend

        backend = resolve_backend(request.backend, backend_options(request.backend_options))
        fallback = "--backend hf" if backend != "hf" else "--backend vllm"
        raise UserError(f"the adapter {request.tuned} has no effect under the {backend} backend: the base and the "
                        f"tuned model give a probe prompt the same log-probabilities, so the backend does not apply "
                        f"the adapter and every tuned result would be the base's; pass {fallback}")
    say(f"adapter check: the adapter changes the probe's log-likelihood by {nats:.2f} nats")
