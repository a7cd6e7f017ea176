"""`evalhub judge calibrate FILE --judge J`: how far a judge agrees with human labels, stored for compare,
the gate and the leaderboard."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from evalhub.cli import _shared as shared
from evalhub.cli._app import app
from evalhub.cli._options import contract_options
from evalhub.contracts import JudgeSettings

judge_app = typer.Typer(help="Judges: agreement with human labels.", no_args_is_help=True)
app.add_typer(judge_app, name="judge")


@judge_app.command("calibrate")
@contract_options(omit=frozenset({"canaries", "use_reference"}), judge_options=JudgeSettings)
def calibrate(
    file: str = typer.Argument(..., help="JSONL of pairs: id, instruction, answer_a, answer_b, human (A, B or tie), "
                                         "optional tags; or `judge_calibration`, the shipped set."),
    judge: str = typer.Option(..., "--judge", help="openai:MODEL, anthropic:MODEL, vllm:PATH or rm:PATH (a reward model)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write n, accuracy, kappa, position_consistency, by_tag here."),
    db: Optional[str] = shared.DB,
    judge_options: dict = None,
) -> None:
    """Judge every pair of FILE in both orders and report agreement with the human labels: accuracy, Cohen's
    kappa, position consistency, by tag. The result is stored; compare and the leaderboard show it."""
    import datetime as dt
    import uuid

    from evalhub.contracts import build
    from evalhub.judge import judge_options as options_for_judge
    from evalhub.judge.calibrate import calibrate as run_calibration
    from evalhub.judge.calibrate import file_hash, load_calibration, resolve_calibration_file
    from evalhub.store import save_calibration

    settings = build(JudgeSettings, **judge_options)
    path = resolve_calibration_file(file)
    pairs = load_calibration(path)
    shared.check_output_file(json_path, "--json")
    where = shared.resolve_db(db)
    result = run_calibration(pairs, judge, options_for_judge(settings))
    summary = result.summary
    created = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    calibration_id = f"cal-{created:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    summary = {"calibration_id": calibration_id, **summary, "calibration_file": str(path)}
    save_calibration({"calibration_id": calibration_id, "created_at": created, "judge": judge,
                      "endpoint": settings.base_url, "protocol": summary["protocol"]["name"],
                      "protocol_hash": summary["protocol"]["hash"], "calibration_file": str(path),
                      "file_hash": file_hash(path), "n": summary["n"], "accuracy": summary["accuracy"],
                      "kappa": summary["kappa"], "position_consistency": summary["position_consistency"],
                      "summary": summary}, where)
    print(f"{judge} ({summary['protocol']['name']}) on {path.name}: {summary['agreements']} of {summary['n']} pairs "
          f"agree with the human label: accuracy {shared.fmt(summary['accuracy'])}, Cohen's kappa "
          f"{shared.fmt(summary['kappa'])}, position consistency {shared.fmt(summary['position_consistency'])}, "
          f"{summary['n'] - summary['scored']} unscored")
    for tag, numbers in summary["by_tag"].items():
        print(f"  {tag}: n {numbers['n']}, accuracy {shared.fmt(numbers['accuracy'])}, kappa {shared.fmt(numbers['kappa'])}")
    shared.write_json(json_path, summary)
    print(f"stored calibration {calibration_id} in {where}", file=sys.stderr)
