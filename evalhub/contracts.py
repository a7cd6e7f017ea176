"""The typed contracts between evalhub's stages: what a comparison asks for, and what a run found.

`CompareRequest` (with its nested decoding, backend, judge and forgetting settings) is checked whole when it
is built, before any model is loaded or any judge call is paid for: a bad value is a one-line UserError that
names the flag. `RunSummary` (with its judge statistics, perplexity, benchmarks and gate) is what the CLI,
the report, the store, the gate and the app all read. Every value a run can lack is declared Optional here,
and each consumer shows it as "–" rather than failing on it.

The summary's JSON form (`RunSummary.to_json()`) is the `--json` document and the store's `runs.summary`
column; its keys are a public interface (see the README).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalhub.errors import UserError, first_repeat

BACKEND_NAMES = ("auto", "vllm", "hf", "openai")

# Bumped when a work folder's checkpoints change shape: a folder written by another format is refused with a
# clear message instead of being misread half way through a resumed run.
WORK_FORMAT = 3


def flag(default: Any, name: str, help: str, **constraints: Any) -> Any:
    """A field set by one command-line flag: `name` is the flag (error messages name it) and `help` its --help
    text. The commands build their options from these fields (evalhub/cli/_options.py), so each flag is
    declared here once."""
    return Field(default, description=name, json_schema_extra={"help": help}, **constraints)


class _Settings(BaseModel):
    """A settings block: unknown fields are an error (a typo must not be silently ignored), and it is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Positive = Annotated[int, Field(ge=1)]


class DecodingSettings(_Settings):
    """How answers are sampled. Greedy by default, so a comparison measures the models, not the dice."""

    temperature: float = flag(0.0, "--temperature", "Sampling temperature (default 0: greedy).", ge=0.0, le=100.0,
                              allow_inf_nan=False)
    top_p: float = flag(1.0, "--top-p", "Nucleus sampling mass (default 1).", gt=0.0, le=1.0, allow_inf_nan=False)
    max_new_tokens: int = flag(64, "--max-new-tokens", "Most tokens per answer (default 64).", ge=1)
    stop: tuple[str, ...] = flag((), "--stop", "Stop string; repeatable.")
    seed: int = flag(0, "--seed", "Sampling seed (default 0).", ge=0)
    chat_template: bool = flag(True, "--no-chat-template", "Send the raw prompt, no chat template.")

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value):
            raise ValueError("a stop string cannot be empty")
        return value


class BackendSettings(_Settings):
    """How the generation backend loads and calls models; None means the backend's own default."""

    base_urls: tuple[str, ...] = flag((), "--base-url", "OpenAI-compatible server(s) serving the models "
                                                        "(--backend openai); repeatable.")
    concurrency: Optional[Positive] = flag(None, "--concurrency", "Generation requests in flight (openai backend).")
    batch_size: Optional[Positive] = flag(None, "--batch-size", "Batch size (hf backend and benchmarks).")
    tensor_parallel_size: Optional[Positive] = flag(None, "--tensor-parallel-size", "vLLM tensor parallel size.")
    pipeline_parallel_size: Optional[Positive] = flag(None, "--pipeline-parallel-size", "vLLM pipeline parallel size.")
    distributed_executor_backend: Optional[Literal["mp", "ray"]] = flag(
        None, "--distributed-executor-backend", "vLLM executor: mp or ray (multi-node).")
    gpu_memory_utilization: Optional[float] = flag(None, "--gpu-memory-utilization",
                                                   "vLLM memory fraction (CPU: of RAM).", gt=0.0, le=1.0,
                                                   allow_inf_nan=False)
    max_model_len: Optional[Positive] = flag(None, "--max-model-len", "vLLM context length.")
    dtype: Optional[str] = flag(None, "--dtype", "Model dtype, e.g. float32, bfloat16.")
    load_in_4bit: bool = flag(False, "--load-in-4bit", "hf backend: 4-bit NF4 base through bitsandbytes.")

    @field_validator("base_urls")
    @classmethod
    def _urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return value


class JudgeSettings(_Settings):
    """How the judge is called; None means the judge's own default."""

    base_url: Optional[str] = flag(None, "--judge-base-url", "OpenAI- (or Anthropic-) compatible server for the judge.")
    concurrency: Optional[Positive] = flag(None, "--judge-concurrency", "Judge calls in flight at once.")
    max_cost: Optional[float] = flag(None, "--max-cost", "Stop the judge cleanly before this many USD are spent "
                                                         "(over the whole run).", gt=0.0, allow_inf_nan=False)
    use_reference: bool = flag(True, "--no-reference", "Do not show the judge the ideal answer.")
    canaries: int = flag(0, "--canaries", "Extra ideal-vs-non-answer pairs that check the judge works.", ge=0)
    timeout: Optional[float] = flag(None, "--judge-timeout", "Seconds to wait for one judge reply (default 60).",
                                    gt=0.0, allow_inf_nan=False)
    max_retry_seconds: Optional[float] = flag(None, "--judge-max-retry-seconds",
                                              "Seconds of retries per judge call before the run stops (default 120).",
                                              gt=0.0, allow_inf_nan=False)
    protocol: Optional[str] = flag(None, "--judge-protocol", "pairwise (default), arena-hard, or a protocol .toml file.",
                                   min_length=1)
    rm_tie_margin: Optional[float] = flag(None, "--rm-tie-margin", "rm:PATH judge: rewards this close or closer are a "
                                                                   "tie (default 0).", ge=0.0, allow_inf_nan=False)


class ForgettingSettings(_Settings):
    """How lm-eval runs the forgetting benchmarks; None means the benchmark layer's own default."""

    num_fewshot: Optional[int] = flag(None, "--num-fewshot", "Few-shot examples for the benchmarks.", ge=0)
    limit: Optional[Positive] = flag(None, "--limit", "Benchmark items per task (for a quick look).")
    batch_size: Optional[Positive] = flag(None, "--batch-size", "Batch size (hf backend and benchmarks).")
    dtype: Optional[str] = flag(None, "--dtype", "Model dtype, e.g. float32, bfloat16.")


class GateThresholds(_Settings):
    """Deployment thresholds over a run; a threshold left None is not checked."""

    min_win_rate: Optional[Probability] = flag(None, "--min-win-rate",
                                               "Fail unless the judge win rate is at least this (0..1).")
    min_win_rate_lower: Optional[Probability] = flag(None, "--min-win-rate-lower",
                                                     "Fail unless the win rate's 95% CI lower bound is at least this.")
    max_forgetting: Optional[Probability] = flag(None, "--max-forgetting", "Largest allowed significant accuracy drop "
                                                                           "on any task (0.02 = 2 points).")
    max_ppl_increase: Optional[float] = flag(None, "--max-ppl-increase", "Largest allowed perplexity increase on any "
                                                                         "data set, in percent.", ge=0.0,
                                             allow_inf_nan=False)
    max_parse_failure_rate: Optional[Probability] = flag(None, "--max-parse-failure-rate",
                                                         "Largest allowed share of judge calls that could not be parsed.")
    # Also the floor every win-rate check needs (default POSITION_CONSISTENCY_FLOOR, evalhub/gate.py).
    min_position_consistency: Optional[Probability] = flag(
        None, "--min-position-consistency", "Smallest allowed share of items whose two orders agree; also the "
        "floor every win-rate check needs (default 0.60).")
    min_scored: Optional[Probability] = flag(
        None, "--min-scored", "Smallest share of items that must be scored for a win-rate check to count "
        "(default 0.80).")
    # Kappa runs from -1 to 1; a threshold below 0 would accept worse than chance, so it is refused.
    min_judge_agreement: Optional[Probability] = flag(None, "--min-judge-agreement", "Fail unless a judge panel's "
                                                      "kappa between its judges is at least this.")
    min_judge_human_agreement: Optional[Probability] = flag(
        None, "--min-judge-human-agreement", "Fail unless every judge's Cohen's kappa with human labels (its latest "
        "`evalhub judge calibrate` with the run's protocol) is at least this.")
    # Blind human review (the app's Review page, `evalhub review import`); see evalhub/gate.py's _human_checks.
    min_human_votes: Optional[Positive] = flag(
        None, "--min-human-votes", "Human votes on the run's own items that --min-judge-human-agreement needs "
        "before it uses them instead of the calibration file (default 30).")
    min_human_win_rate: Optional[Probability] = flag(
        None, "--min-human-win-rate", "Fail unless the human reviewers' win rate of the candidate is at least this.")

    def win_rate_thresholds(self) -> list[float]:
        """The thresholds a sequential run must decide before it may stop judging."""
        return [v for v in (self.min_win_rate, self.min_win_rate_lower) if v is not None]

    def any(self) -> bool:
        """Whether a check was asked for (min_scored only qualifies the win-rate checks)."""
        return any(value is not None for name, value in self.model_dump().items()
                   if name not in ("min_scored", "min_human_votes"))


class CompareRequest(_Settings):
    """Everything a comparison depends on. Its JSON form is the run's stored config; secrets never enter it.

    `base` is the baseline (BASELINE: what is deployed, or the base model) and `tuned` the candidate
    (CANDIDATE); each is a base model folder, a LoRA adapter folder, a full model folder, a tag, or (openai
    backend) a served name. The names stay `base` and `tuned`, as the stored runs and the JSON summary have them.
    """

    base: str = Field(description="BASELINE")
    tuned: str = Field(description="CANDIDATE")
    adapter_base: Optional[str] = flag(None, "--base", "Where the adapters' base model is now, when it moved since "
                                                       "training (default: adapter_config.json's).")
    golden: tuple[str, ...] = Field((), description="--golden")
    judge: Optional[str] = Field(None, description="--judge")
    # A judge panel (--judge given twice or more); `judge` is then None.
    judges: tuple[str, ...] = Field((), description="--judge")
    perplexity_data: dict[str, str] = Field(default_factory=dict, description="--perplexity-data")
    perplexity_window: Optional[int] = flag(None, "--window", "Perplexity window in tokens.", ge=2)
    perplexity_stride: Optional[Positive] = flag(None, "--stride", "Perplexity stride in tokens.")
    tasks: tuple[str, ...] = Field((), description="--tasks")
    answer_metrics: tuple[str, ...] = flag((), "--answer-metric", "Per-answer metric to compare, item by item: words "
                                                                  "(answer length), refusal; repeatable. New ones: "
                                                                  "docs/adding-a-stage.md.")
    tasks_path: Optional[str] = flag(None, "--tasks-path", "Folder of local lm-eval task YAML files.")
    training_data: Optional[str] = flag(None, "--train-data", "The candidate's training file: golden items "
                                                              "overlapping it are reported.")
    strict_contamination: bool = flag(False, "--strict", "Make golden/training overlap an error.")
    backend: Literal["auto", "vllm", "hf", "openai"] = flag("auto", "--backend", "auto | vllm | hf | openai (auto: "
                                                                                 "vLLM where it imports, else hf).")
    decoding: DecodingSettings = Field(default_factory=DecodingSettings)
    backend_options: BackendSettings = Field(default_factory=BackendSettings)
    judge_options: JudgeSettings = Field(default_factory=JudgeSettings)
    forgetting: ForgettingSettings = Field(default_factory=ForgettingSettings)
    thresholds: Optional[GateThresholds] = Field(None, description="--gate")
    sequential: bool = flag(False, "--sequential", "With --gate: judge the items in a seeded random order, in "
                                                   "batches, and stop once every win-rate threshold is decided by "
                                                   "an anytime-valid confidence sequence.")
    sequential_batch: Positive = flag(20, "--sequential-batch", "Items judged between two looks of --sequential.")
    kind: Literal["compare", "demo"] = "compare"

    @field_validator("golden")
    @classmethod
    def _golden_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if (path := first_repeat(value)) is not None:
            raise ValueError(f"{path} is given twice; pass each golden set once")
        return value

    @model_validator(mode="after")
    def _stride_within_window(self) -> "CompareRequest":
        if self.perplexity_window and self.perplexity_stride and self.perplexity_stride > self.perplexity_window:
            raise ValueError(f"--stride {self.perplexity_stride} must not exceed --window {self.perplexity_window}")
        return self

    @model_validator(mode="after")
    def _sequential_needs_a_win_rate_gate(self) -> "CompareRequest":
        if self.sequential and (self.thresholds is None or not self.thresholds.win_rate_thresholds()):
            raise ValueError("--sequential stops judging once the gate's win-rate thresholds are decided: pass --gate "
                             "with --min-win-rate and/or --min-win-rate-lower")
        return self


# ---------------------------------------------------------------- the run summary

class _Part(BaseModel):
    """A part of a stored summary: keys a newer evalhub adds are kept (and shown by `show --json`)."""

    model_config = ConfigDict(extra="allow")


Interval = tuple[float, float]


class TagStats(_Part):
    """The win rate on the golden items carrying one tag."""

    n: int
    wins: int
    losses: int
    ties: int
    win_rate: Optional[float] = None
    win_rate_ci: Optional[Interval] = None


class JudgeAgreement(_Part):
    """How far a panel's judges agree, over the items every judge scored: raw agreement and Cohen's kappa for
    two judges (method 'cohen'), mean pairwise agreement and Fleiss' kappa for more ('fleiss')."""

    raw: Optional[float] = None
    kappa: Optional[float] = None
    method: Literal["cohen", "fleiss"]
    n: int = 0
    pairs: Optional[dict[str, dict[str, Any]]] = None


class ProtocolInfo(_Part):
    """The judge protocol a run used: its name, version and content hash (part of every cache key)."""

    name: str
    version: int
    hash: str
    source: Optional[str] = None


class JudgeCalibration(_Part):
    """A judge's latest agreement with human labels (`evalhub judge calibrate`)."""

    n: int
    accuracy: Optional[float] = None
    kappa: Optional[float] = None
    position_consistency: Optional[float] = None
    calibration_id: Optional[str] = None
    created_at: Optional[str] = None


class SequentialInfo(_Part):
    """`compare --gate --sequential`: judging stopped once the gate's win-rate thresholds were decided by an
    anytime-valid confidence sequence (evalhub/stats/sequential.py), on which the gate then decides."""

    stopped_early: bool
    items_judged: int
    items_total: int
    interval: Interval            # the anytime-valid 95% interval on the win rate when judging stopped
    batch: int                    # items judged between two looks
    seed: int                     # the order the items were judged in (a resumed run continues it)


class JudgeStats(_Part):
    """The judge stage: counts, the win rate with its uncertainty, and the judge's telemetry. The rates are
    None when nothing could be scored (every reply unreadable, every generation failed). For a panel the
    counts are the panel's majority verdicts, and `judges` holds each judge's own statistics."""

    n: int
    wins: int
    losses: int
    ties: int
    scored: int
    unscored: int
    win_rate: Optional[float] = None
    win_rate_ci: Optional[Interval] = None
    p_value: Optional[float] = None
    parse_failures: int = 0
    position_consistency: Optional[float] = None
    lc_win_rate: Optional[float] = None
    canary_accuracy: Optional[float] = None
    judge_calls: int = 0
    cost_usd: Optional[float] = None
    sc_win_rate: Optional[float] = None          # style-controlled: length and markdown density held equal
    by_tag: Optional[dict[str, TagStats]] = None
    identical_pairs: Optional[int] = None        # items whose answers were the same text: ties, no judge call
    protocol: Optional[ProtocolInfo] = None
    judges: Optional[dict[str, "JudgeStats"]] = None    # a panel's judges, each with its own statistics
    # Items whose two orders both gave a verdict and disagreed (they count as ties too); a panel's: summed
    # over its judges. None in runs stored before it was counted.
    inconsistent: Optional[int] = None
    # The smallest true |win rate - 0.5| these scored items (and this tie rate) detect with 80% power at
    # alpha 0.05 (evalhub/stats/power.py); None when nothing (or only ties) was scored.
    mde: Optional[float] = None
    clusters: Optional[int] = None               # clusters the scored items form, when the golden set has them
    sequential: Optional[SequentialInfo] = None
    judge_agreement: Optional[JudgeAgreement] = None
    calibration: Optional[dict[str, JudgeCalibration]] = None  # judge -> its latest calibration, where one exists

    def parse_failure_rate(self) -> Optional[float]:
        """Unreadable replies over the calls made, at most 1 (None without calls). Every item is judged in
        both orders, so a judge makes 2n calls; a panel's rate is pooled: its judges' failures summed over all
        their calls (a panel's `parse_failures` is that sum, so dividing it by one judge's 2n overcounts)."""
        if self.judges:
            calls = sum(2 * judge.n for judge in self.judges.values())
            failures = sum(judge.parse_failures for judge in self.judges.values())
        else:
            calls, failures = 2 * self.n, self.parse_failures
        return failures / calls if calls else None


class PerplexityDelta(_Part):
    base: float
    tuned: float
    delta_pct: Optional[float] = None
    bpb_base: Optional[float] = None
    bpb_tuned: Optional[float] = None


class BenchmarkDelta(_Part):
    """One lm-eval task, base against tuned on the same items; accuracies are None for a task without items."""

    base: Optional[float] = None
    tuned: Optional[float] = None
    delta: Optional[float] = None
    ci: Optional[Interval] = None
    p_value: Optional[float] = None
    forgetting: bool = False


class AnswerMetricDelta(_Part):
    """One per-answer metric (`--answer-metric`), candidate against baseline over the items both answered:
    the means, the paired delta with its bootstrap CI, and a paired test's p-value (evalhub/stats/paired.py)."""

    n: int
    base: Optional[float] = None
    tuned: Optional[float] = None
    delta: Optional[float] = None
    ci: Optional[Interval] = None
    p_value: Optional[float] = None
    test: Optional[str] = None


class GateCheck(_Part):
    name: str
    threshold: float
    value: Optional[float] = None  # None: the run could not measure it (and the check fails)
    passed: bool
    detail: Optional[str] = None   # why a check failed without a value, e.g. "0 of 100 items scored"


class GateResult(_Part):
    passed: bool
    checks: list[GateCheck]


class RunSummary(_Part):
    """What one run found: the `--json` document, the stored summary, and what every view reads."""

    run_id: str
    base: str
    tuned: str
    judge: Optional[str] = None
    golden: Optional[list[str]] = None
    judge_stats: Optional[JudgeStats] = None
    perplexity: Optional[dict[str, PerplexityDelta]] = None
    benchmarks: Optional[dict[str, BenchmarkDelta]] = None
    answer_metrics: Optional[dict[str, AnswerMetricDelta]] = None
    gate: Optional[GateResult] = None
    warnings: list[str] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON document: stages the run did not have are left out (not null), as they always were."""
        data = self.model_dump(mode="json")
        for key in ("judge", "golden", "judge_stats", "perplexity", "benchmarks", "answer_metrics", "gate"):
            if data.get(key) is None:
                data.pop(key, None)
        # A single judge's run has no panel, no agreement between judges and perhaps no calibration, a golden
        # set without clusters has no cluster count, a run that judged every item no sequential part: left out.
        stats = data.get("judge_stats")
        for part in [stats, *((stats or {}).get("judges") or {}).values()]:
            for key in ("judges", "judge_agreement", "calibration", "clusters", "sequential"):
                if part is not None and part.get(key) is None:
                    part.pop(key, None)
        if not data["warnings"]:
            data.pop("warnings")
        return data

    @classmethod
    def from_stored(cls, data: dict, run_id: str, base: str, tuned: str) -> "RunSummary":
        """A stored summary, typed. Runs stored by `evalhub bench --store` keep only their benchmarks: the
        run's own columns fill in its id and models."""
        where = f"run {run_id} of the store"
        try:
            return cls.model_validate({"run_id": run_id, "base": base, "tuned": tuned, **data})
        except ValidationError as error:
            raise UserError(f"a run summary in {where} is not readable by this evalhub ({_first_problem(error)}); "
                            "upgrade evalhub or re-run the comparison") from None


# ---------------------------------------------------------------- validation errors as one line

def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "value"
    return f"{where}: {problem['msg']}"


def flag_name(model: type[BaseModel], location: tuple) -> str:
    """The command-line flag behind a field (its description), following nested settings blocks."""
    current: Any = model
    name = ".".join(str(p) for p in location)
    for part in location:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            break
        info = fields[part]
        name = info.description or str(part)
        annotation = info.annotation
        nested = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)
                  and issubclass(a, BaseModel)]
        current = nested[0] if nested else None
    return name


def build(model: type[BaseModel], **values):
    """Construct a settings model, or raise one UserError naming the flag and what is wrong with its value."""
    try:
        return model(**values)
    except ValidationError as error:
        problem = error.errors()[0]
        flag = flag_name(model, tuple(problem["loc"]))
        message = problem["msg"].removeprefix("Value error, ")
        given = problem.get("input")
        shown = "" if isinstance(given, (dict, BaseModel)) or given is None else f" (got {given!r})"
        raise UserError(f"{flag}: {message}{shown}") from None


# ---------------------------------------------------------------- arenas

class ArenaRequest(_Settings):
    """Everything an arena depends on: its models (as given on the command line: folders or tags), the golden
    sets, the judge, and how models answer. Its JSON form is the arena's stored config."""

    models: tuple[str, ...] = Field(description="MODEL")
    anchor: Optional[str] = flag(None, "--anchor", "Judge each model against this one only (one of the MODELs), "
                                                   "not every pair.")
    adapter_base: Optional[str] = flag(None, "--base", "Where the adapters' base model is now, when it moved since "
                                                       "training.")
    golden: tuple[str, ...] = Field(description="--golden")
    judge: Optional[str] = Field(None, description="--judge")
    backend: Literal["auto", "vllm", "hf", "openai"] = flag("auto", "--backend", "auto | vllm | hf | openai (auto: "
                                                                                 "vLLM where it imports, else hf).")
    decoding: DecodingSettings = Field(default_factory=DecodingSettings)
    backend_options: BackendSettings = Field(default_factory=BackendSettings)
    judge_options: JudgeSettings = Field(default_factory=JudgeSettings)
    # None (`--prior-sd 0`): the unregularised maximum-likelihood ratings; see evalhub/stats/arena.py.
    prior_sd: Optional[float] = flag(2.0, "--prior-sd", "Sd of the ratings' weak Gaussian prior (default 2); 0: "
                                                        "unregularised maximum likelihood.", ge=0.0, allow_inf_nan=False)
    alpha: Probability = flag(0.05, "--alpha", "Family-wise significance level of the pairwise tests, Holm-corrected "
                                               "(default 0.05).")
    kind: Literal["arena"] = "arena"

    @field_validator("prior_sd")
    @classmethod
    def _zero_is_no_prior(cls, value: Optional[float]) -> Optional[float]:
        return None if value == 0 else value

    @field_validator("models")
    @classmethod
    def _models(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) < 2:
            raise ValueError("an arena needs at least two models")
        seen = set()
        for model in value:
            if not model.strip():
                raise ValueError("a model argument is empty")
            if model in seen:
                raise ValueError(f"{model} is given twice; pass each model once")
            seen.add(model)
        return value

    @field_validator("golden")
    @classmethod
    def _golden(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("an arena needs a golden set: pass --golden FILE")
        return CompareRequest._golden_once(value)


class ArenaModelRating(_Part):
    model: str
    rating: Optional[float] = None       # Elo scale; None: the model has no scored comparison
    ci: Optional[Interval] = None
    rank: Optional[int] = None
    comparisons: int = 0


class ArenaPair(_Part):
    """One pair, counted from a's side; items whose two orders disagree are ties, as in compare."""

    a: str
    b: str
    wins: int
    losses: int
    ties: int
    win_rate: Optional[float] = None
    win_rate_ci: Optional[Interval] = None
    p_value: Optional[float] = None      # two-sided sign test
    p_holm: Optional[float] = None       # Holm-adjusted over the arena's pairs
    significant: bool = False            # never when `uninformative`
    position_consistency: Optional[float] = None
    inconsistent: Optional[int] = None   # items whose two orders both gave a verdict and disagreed
    mde: Optional[float] = None          # the pair's minimum detectable effect (evalhub/stats/power.py)
    uninformative: Optional[str] = None  # why the judge's verdicts on this pair carry too little information


class ArenaJudgeStats(_Part):
    """The judge's telemetry pooled over every pair."""

    judge: Optional[str] = None
    calls: int = 0
    parse_failures: int = 0
    position_consistency: Optional[float] = None
    cost_usd: Optional[float] = None
    scored: int = 0
    unscored: int = 0


class ArenaSummary(_Part):
    """What an arena found: its `--json` document and stored summary."""

    run_id: str
    models: list[str]
    ratings: list[ArenaModelRating]
    pairs: list[ArenaPair]
    judge_stats: ArenaJudgeStats
    warnings: list[str] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        if not data["warnings"]:
            data.pop("warnings")
        return data
