"""The stages of an arena, each turning typed inputs into a checkpointable result, and the summary and store
record built from them. `evalhub.arena` runs them in order; nothing here decides that order."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from evalhub.contracts import ArenaJudgeStats, ArenaModelRating, ArenaPair, ArenaRequest, ArenaSummary, GateThresholds
from evalhub.errors import UserError
from evalhub.records import GoldenItem, Generation, ModelRef
from evalhub.stages import Answers, split_key

Pair = tuple[str, str]


# ---------------------------------------------------------------- inputs

def resolve_models(request: ArenaRequest, db) -> tuple[dict[str, str], dict[str, str], str | None]:
    """{name: path} for the arena's models (a tag resolves to the model it names, its weights checked), which
    names were tags, and the adapters' base (--base, or the one recorded with a tagged adapter)."""
    from evalhub.tags import resolve_model

    if request.anchor is not None and request.anchor not in request.models:
        raise UserError(f"--anchor {request.anchor}: not one of the arena's models; pass one of them")
    if request.backend == "openai":
        return {name: name for name in request.models}, {}, request.adapter_base
    paths, tags, adapter_base = {}, {}, request.adapter_base
    for name in request.models:
        paths[name], base = resolve_model(name, db)
        if paths[name] != name:
            tags[name] = paths[name]
            adapter_base = adapter_base or _needed_base(paths[name], base)
    return paths, tags, adapter_base


def _needed_base(path: str, base: str | None) -> str | None:
    from evalhub.models import inspect_model, same_base

    recorded = inspect_model(path).adapter_base if base else None
    return None if not base or (recorded and same_base(recorded, base)) else base


def choose_judge(request: ArenaRequest) -> str:
    """The judge named, or the default GPT-4-class judge when OPENAI_API_KEY is set (as compare chooses)."""
    from evalhub.compare import named_or_default_judge

    return named_or_default_judge(request.judge)


def check_distinct(refs: dict[str, ModelRef]) -> None:
    """Two arguments naming the same weights would be judged against themselves."""
    seen: dict[str, str] = {}
    for name, ref in refs.items():
        if ref.model_id in seen:
            raise UserError(f"{seen[ref.model_id]} and {name} are the same model ({ref.path}); pass each model once")
        seen[ref.model_id] = name


def plan_pairs(names: list[str], anchor: str | None) -> list[Pair]:
    """Every pair in command-line order (a before b), or with an anchor each other model against it."""
    if anchor is not None:
        return [(name, anchor) for name in names if name != anchor]
    return [(a, b) for k, a in enumerate(names) for b in names[k + 1:]]


def run_config(request: ArenaRequest, paths: dict[str, str], refs: dict[str, ModelRef], judge: str | None,
               tags: dict[str, str], adapter_base: str | None) -> dict:
    from evalhub.workdir import _file_hash, _versions

    return {"request": request.model_dump(mode="json"), "judge": judge, "paths": paths,
            "adapter_base": adapter_base, "models": {name: asdict(ref) for name, ref in refs.items()},
            "tags": tags, "inputs": {path: _file_hash(path) for path in request.golden}, "versions": _versions()}


# ---------------------------------------------------------------- stages

def generate(request: ArenaRequest, paths: dict[str, str], adapter_base: str | None, items: list[GoldenItem],
             done: Answers, save: Callable[[str, dict[str, Generation]], None]) -> Answers:
    """Every model's answers: adapters of one base from one engine, batched across the adapters."""
    from evalhub.generate import backend_options, generate_for_models

    return generate_for_models(paths, items, settings=request.decoding, backend=request.backend,
                               options=backend_options(request.backend_options), done=done, on_answers=save,
                               adapter_base=adapter_base)


def spent_so_far(judged: dict[Pair, dict]) -> float:
    return sum(j["stats"].get("cost_usd") or 0.0 for j in judged.values())


def judge_pair(request: ArenaRequest, judge_name: str, items: list[GoldenItem], answers: Answers, pair: Pair,
               spent: float) -> dict:
    """One pair judged in both orders, as compare judges its two models (same protocol, cache and budget:
    `--max-cost` covers the whole arena, so each pair gets what the pairs before it left)."""
    from evalhub.judge import judge_options, judge_pairs

    a, b = pair
    options = judge_options(request.judge_options)
    if options.max_cost is not None:
        left = options.max_cost - spent
        if left <= 0:
            raise UserError(f"the judge budget --max-cost {options.max_cost:g} USD is spent after {spent:.4f} USD; "
                            "raise it and re-run the same command to judge the remaining pairs")
        options = replace(options, max_cost=left)
    outcome = judge_pairs(items=items, base=answers[b], tuned=answers[a], judge=judge_name, options=options,
                          golden_file="")
    rows = []
    for row in outcome.judgments:
        golden_file, item_id = split_key(row["item_id"], request.golden)
        rows.append({"a": a, "b": b, "golden_file": golden_file, "item_id": item_id,
                     "a_position": row["tuned_position"], **{k: row[k] for k in (
                         "judge", "raw_reply", "status", "verdict", "reason", "prompt_tokens", "completion_tokens",
                         "cost_usd", "is_canary")}})
    return {"judgments": rows, "stats": outcome.stats}


# ---------------------------------------------------------------- summary and store record

def item_outcomes(judged: dict[Pair, dict]):
    """Each pair's items folded over both orders (a failed order: not scored; disagreeing orders: a tie)."""
    from evalhub.stats.arena import ItemOutcome
    from evalhub.stats.pairwise import SCORE, combine_orders

    outcomes = []
    for (a, b), result in judged.items():
        verdicts: dict[tuple[str, str], dict[str, str | None]] = {}
        for row in result["judgments"]:
            if not row["is_canary"]:
                verdicts.setdefault((row["golden_file"], row["item_id"]), {})[row["a_position"]] = row["verdict"]
        for (golden_file, item_id), by_position in verdicts.items():
            verdict = combine_orders(by_position.get("A"), by_position.get("B"))
            if verdict is not None:
                outcomes.append(ItemOutcome(f"{golden_file}::{item_id}", a, b, SCORE[verdict]))
    return outcomes


def summary(run_id: str, request: ArenaRequest, judge_name: str, judged: dict[Pair, dict]) -> ArenaSummary:
    from evalhub.stats.arena import arena_ratings, holm

    names = list(request.models)
    warnings = []
    outcomes = item_outcomes(judged)
    try:
        fitted = arena_ratings(outcomes, names, prior_sd=request.prior_sd, seed=request.decoding.seed)
    except ValueError as error:  # --prior-sd 0 on data with no finite maximum-likelihood estimate
        warnings.append(f"{error}; the ratings use the weak prior (sd 2) instead")
        fitted = arena_ratings(outcomes, names, prior_sd=2.0, seed=request.decoding.seed)
    if fitted.dropped_resamples:
        warnings.append(f"{fitted.dropped_resamples} of {fitted.dropped_resamples + fitted.resamples} bootstrap "
                        "resamples had no finite maximum-likelihood ratings and were left out")
    ratings = [ArenaModelRating(model=r.model, rating=r.rating, ci=r.ci, rank=r.rank, comparisons=r.comparisons)
               for r in sorted(fitted.ratings, key=lambda r: (r.rating is None, -(r.rating or 0)))]
    stats = [judged[pair]["stats"] for pair in judged]
    adjusted = holm([s["p_value"] if s["scored"] else None for s in stats])
    # The gate's rule, pair by pair: a pair whose judge followed the answer order, or scored too few of its
    # items, is never called significant (evalhub/gate.py: information_missing).
    from types import SimpleNamespace

    from evalhub.gate import information_missing

    missing = [information_missing(SimpleNamespace(n=s["n"], scored=s["scored"],
                                                   position_consistency=s["position_consistency"]), GateThresholds())
               for s in stats]
    pairs = [ArenaPair(a=a, b=b, wins=s["wins"], losses=s["losses"], ties=s["ties"], win_rate=s["win_rate"],
                       win_rate_ci=s["win_rate_ci"], p_value=s["p_value"] if s["scored"] else None, p_holm=p,
                       significant=p is not None and p < request.alpha and reason is None,
                       position_consistency=s["position_consistency"], inconsistent=s.get("inconsistent"),
                       mde=s.get("mde"), uninformative=reason)
             for (a, b), s, p, reason in zip(judged, stats, adjusted, missing)]
    for pair in pairs:
        if pair.uninformative:
            warnings.append(f"{pair.a} vs {pair.b}: {pair.uninformative}; the pair is not called significant")
    scored = sum(s["scored"] for s in stats)
    consistent = [(s["position_consistency"], s["scored"]) for s in stats if s["position_consistency"] is not None]
    weight = sum(n for _, n in consistent)
    costs = [s["cost_usd"] for s in stats]
    judge_stats = ArenaJudgeStats(
        judge=judge_name, calls=sum(s["judge_calls"] for s in stats),
        parse_failures=sum(s["parse_failures"] for s in stats),
        position_consistency=sum(c * n for c, n in consistent) / weight if weight else None,
        cost_usd=None if any(c is None for c in costs) else float(sum(costs)), scored=scored,
        unscored=sum(s["unscored"] for s in stats))
    if scored == 0:
        warnings.append("no item could be scored in any pair: the arena has no ratings")
    return ArenaSummary(run_id=run_id, models=names, ratings=ratings, pairs=pairs, judge_stats=judge_stats,
                        warnings=warnings)


def record(run_id: str, created_at: str, request: ArenaRequest, refs: dict[str, ModelRef], judge_name: str,
           config: dict, result: ArenaSummary, golden: dict[str, list[GoldenItem]], answers: Answers,
           judged: dict[Pair, dict]):
    from evalhub.store._arenas import ArenaRecord

    arena = ArenaRecord(run_id=run_id, created_at=created_at, judge=judge_name, golden=list(request.golden),
                        anchor=request.anchor, config=config, summary=result.to_json(), models=refs)
    arena.golden_items = [{"golden_file": path, "item_id": item.id, "instruction": item.instruction,
                           "input": item.input, "output": item.output, "tags": list(item.tags)}
                          for path, items in golden.items() for item in items]
    settings = {**request.decoding.model_dump(mode="json"), "backend": request.backend}
    for name, by_key in answers.items():
        for key, generation in by_key.items():
            golden_file, item_id = split_key(key, request.golden)
            arena.generations.append((name, golden_file, settings, replace(generation, item_id=item_id)))
    arena.judgments = [row for result_ in judged.values() for row in result_["judgments"]]
    return arena


def write_report(result: ArenaSummary, report_dir: Path) -> tuple[Path, Path]:
    """`<run_id>.md` and `<run_id>.html`: the ratings and the pairs."""
    import html

    fmt = lambda v, spec=".3f": "–" if v is None else format(v, spec)  # noqa: E731
    ci = lambda c, spec=".0f": "" if not c else f" [{format(c[0], spec)}, {format(c[1], spec)}]"  # noqa: E731
    lines = [f"# evalhub arena {result.run_id}", "", f"Judge: {result.judge_stats.judge}; "
             f"{result.judge_stats.calls} judge calls, {result.judge_stats.scored} items scored over "
             f"{len(result.pairs)} pairs.", "", "## Ratings (Bradley-Terry, Elo scale, 95% CI)", "",
             "| rank | model | rating | comparisons |", "|---|---|---|---|"]
    lines += [f"| {fmt(r.rank, 'd')} | {r.model} | {fmt(r.rating, '.0f')}{ci(r.ci)} | {r.comparisons} |"
              for r in result.ratings]
    lines += ["", "## Pairs (from a's side)", "", "| a | b | W | T | L | win rate | p | Holm p | differs |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {p.a} | {p.b} | {p.wins} | {p.ties} | {p.losses} | {fmt(p.win_rate)}{ci(p.win_rate_ci, '.3f')} | "
              f"{fmt(p.p_value, '.3g')} | {fmt(p.p_holm, '.3g')} | {'yes' if p.significant else 'no'} |"
              for p in result.pairs]
    lines += [f"", *[f"warning: {w}" for w in result.warnings]]
    markdown = "\n".join(lines) + "\n"
    report_dir.mkdir(parents=True, exist_ok=True)
    md_path, html_path = report_dir / f"{result.run_id}.md", report_dir / f"{result.run_id}.html"
    md_path.write_text(markdown, encoding="utf-8")
    html_path.write_text(f"<!doctype html><meta charset='utf-8'><title>evalhub arena {html.escape(result.run_id)}"
                         f"</title><pre>{html.escape(markdown)}</pre>\n", encoding="utf-8")
    return md_path, html_path
