"""How far a judge agrees with people: `evalhub judge calibrate FILE --judge J`.

FILE is JSONL of fixed pairs, one a line: `id`, `instruction`, `answer_a`, `answer_b`, `human` ("A", "B" or
"tie": the answer a person judged better), optional `tags`. Each pair is judged like a golden item, blind
and in both orders, through the same judge, protocol, cache and budget as `compare` (answer_a plays the
"tuned" side, so a judge verdict of "win" means A). No ideal answer is shown: the judge must know what is
right, as JudgeBench argues a judge should be tested.

Reported: accuracy (share of pairs where the judge's verdict, both orders folded, is the human label; a pair
the judge left unscored counts as a disagreement, so an unreadable judge cannot look accurate), Cohen's kappa
against the human labels over the same pairs (an unscored pair is a category of its own that humans never
use), position consistency, and both per tag. The shipped set `judge_calibration` (golden_sets/) holds pairs
with objective right answers: arithmetic, facts, format following and refusals.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evalhub.errors import UserError

HUMAN_TO_VERDICT = {"A": "win", "B": "loss", "tie": "tie"}
SHIPPED = "judge_calibration"
EXAMPLE = '{"id": "p1", "instruction": "...", "answer_a": "...", "answer_b": "...", "human": "A"}'


class CalibrationPair(BaseModel):
    """One line of a calibration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    instruction: str = Field(min_length=1)
    answer_a: str
    answer_b: str
    human: Literal["A", "B", "tie"]
    tags: tuple[str, ...] = ()

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


@dataclass
class Calibration:
    """A calibration's numbers (`summary`, the --json document) and every judge call made for it."""

    summary: dict
    calls: list[dict]


def resolve_calibration_file(name_or_path: str | Path) -> Path:
    """A calibration file by path, or the shipped set by name (`judge_calibration`)."""
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in (SHIPPED, f"{SHIPPED}.jsonl"):
        from evalhub.resources import golden_sets_dir

        return golden_sets_dir() / f"{SHIPPED}.jsonl"
    return path


def load_calibration(path: str | Path) -> list[CalibrationPair]:
    """Read a calibration file, or UserError naming file:line and the fix."""
    from evalhub.jsonl import read_json_objects

    pairs: list[CalibrationPair] = []
    seen: dict[str, int] = {}
    for where, number, row in read_json_objects(Path(path), "calibration file", EXAMPLE):
        try:
            pair = CalibrationPair.model_validate(row)
        except ValidationError as error:
            problem = error.errors()[0]
            field = ".".join(str(p) for p in problem["loc"]) or "line"
            raise UserError(f"{where}: {field}: {problem['msg']}; each line is {EXAMPLE} (optional tags: a list "
                            f"of strings)") from None
        if pair.id in seen:
            raise UserError(f"{where}: duplicate id {pair.id!r} (first on line {seen[pair.id]}); ids must be unique")
        seen[pair.id] = number
        pairs.append(pair)
    if not pairs:
        raise UserError(f"{path}: the calibration file is empty; add one JSON object per line")
    return pairs


def agreement_numbers(judge: Sequence[str | None], human: Sequence[str], first: Sequence[str | None],
                      second: Sequence[str | None], identical: Sequence[bool]) -> dict:
    """accuracy, Cohen's kappa and position consistency of a judge's folded verdicts against human verdicts
    ('win' = A better, 'loss' = B better, 'tie'); None = the judge gave no verdict on the pair."""
    from evalhub.stats.agreement import CATEGORIES, cohen_kappa
    from evalhub.stats.pairwise import ItemVerdicts, position_consistency

    n = len(human)
    scored = sum(v is not None for v in judge)
    shown = [v if v is not None else "unscored" for v in judge]
    agree = sum(j == h for j, h in zip(shown, human))
    # A judge that scored no pair has no agreement to measure: None, not an accuracy (and a kappa) of 0.
    return {
        "n": n,
        "scored": scored,
        "agreements": agree,
        "accuracy": agree / n if scored else None,
        "kappa": cohen_kappa(shown, list(human), (*CATEGORIES, "unscored")) if scored else None,
        "position_consistency": position_consistency(
            [ItemVerdicts(str(k), a, b, 0, 0, identical=same) for k, (a, b, same) in enumerate(zip(first, second, identical))]),
    }


def calibrate(pairs: Sequence[CalibrationPair], judge: str, options) -> Calibration:
    """Judge every pair in both orders and compare the verdicts with the human labels."""
    from dataclasses import replace

    from evalhub.judge import judge_pairs, load_protocol, same_answer
    from evalhub.records import Generation, GoldenItem
    from evalhub.stats.pairwise import combine_orders

    if judge == "reference":
        raise UserError("the reference judge grades by similarity to an ideal answer, and calibration pairs have "
                        "none; calibrate an LLM judge (--judge openai:MODEL, anthropic:MODEL or vllm:PATH)")
    protocol = load_protocol(options.protocol)
    items = [GoldenItem(id=p.id, instruction=p.instruction, output="", tags=p.tags) for p in pairs]
    # answer_a plays the tuned side: a "win" is a verdict for A.
    tuned = {p.id: Generation(p.id, p.instruction, p.answer_a) for p in pairs}
    base = {p.id: Generation(p.id, p.instruction, p.answer_b) for p in pairs}
    outcome = judge_pairs(items, base=base, tuned=tuned, judge=judge,
                          options=replace(options, use_reference=False, canaries=0), golden_file="calibration")
    sides = {(r["item_id"], r["tuned_position"]): r["verdict"] for r in outcome.calls}
    first = [sides.get((p.id, "A")) for p in pairs]
    second = [sides.get((p.id, "B")) for p in pairs]
    verdicts = [combine_orders(a, b) for a, b in zip(first, second)]
    human = [HUMAN_TO_VERDICT[p.human] for p in pairs]
    identical = [same_answer(p.answer_a, p.answer_b) for p in pairs]
    summary = {"judge": judge, "protocol": protocol.describe(), **agreement_numbers(verdicts, human, first, second, identical)}
    by_tag = {}
    for tag in sorted({t for p in pairs for t in p.tags}):
        keep = [k for k, p in enumerate(pairs) if tag in p.tags]
        numbers = agreement_numbers([verdicts[k] for k in keep], [human[k] for k in keep], [first[k] for k in keep],
                                    [second[k] for k in keep], [identical[k] for k in keep])
        by_tag[tag] = {key: numbers[key] for key in ("n", "accuracy", "kappa", "position_consistency")}
    stats = outcome.stats
    summary.update({
        "by_tag": by_tag,
        "confusion": {h: {j: sum(1 for x, y in zip(human, verdicts) if x == h and (y or "unscored") == j)
                          for j in ("win", "loss", "tie", "unscored")} for h in ("win", "loss", "tie")},
        "parse_failures": stats["parse_failures"],
        "identical_pairs": stats.get("identical_pairs", 0),
        "judge_calls": stats["judge_calls"],
        "cost_usd": stats["cost_usd"],
        "pairs": [{"id": p.id, "human": p.human, "judge": _as_label(v)} for p, v in zip(pairs, verdicts)],
    })
    return Calibration(summary=summary, calls=outcome.calls)


def _as_label(verdict: str | None) -> str | None:
    return {"win": "A", "loss": "B", "tie": "tie"}.get(verdict) if verdict else None


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
