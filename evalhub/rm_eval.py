"""How well a reward model ranks preference pairs: `evalhub rm eval RM --data PREFS.jsonl`.

Each pair's chosen and rejected answers are scored alone, after the prompt; the pair is ranked right when the
chosen answer's reward is above the rejected one's (an equal reward counts as wrong: a model that scores
everything the same must not look half right). Reported: accuracy with a 95% Wilson interval, the mean reward
margin (chosen minus rejected), and accuracy per tag (a row's optional `tags`), as RewardBench reports
reward models by category.
"""

from __future__ import annotations

from pathlib import Path


def evaluate_reward_model(rm: str | Path, data: str | Path, base: str | Path | None = None,
                          batch_size: int = 16) -> dict:
    """{n, accuracy, accuracy_ci, margin, by_tag: {tag: {n, accuracy, accuracy_ci, margin}}}; bad input is a
    UserError before the model loads."""
    from evalhub.jsonl import read_json_objects
    from evalhub.models.reward import RewardModel, check_reward_model
    from trainers.data import load_preference_examples

    check_reward_model(rm, flag="RM")
    examples = load_preference_examples(data)
    tags = {number: tuple(t for t in (row.get("tags") or ()) if isinstance(t, str))
            for _where, number, row in read_json_objects(Path(data), "preference file", "")}
    model = RewardModel.load(rm, base=base, flag="RM")
    rewards = model.score([(e.prompt, answer) for e in examples for answer in (e.chosen, e.rejected)],
                          batch_size=batch_size)
    margins = [rewards[2 * k] - rewards[2 * k + 1] for k in range(len(examples))]
    summary = {"rm": str(rm), "data": str(data), **_numbers(margins)}
    by_tag = {}
    for tag in sorted({t for e in examples for t in tags.get(e.line, ())}):
        by_tag[tag] = _numbers([m for e, m in zip(examples, margins) if tag in tags.get(e.line, ())])
    summary["by_tag"] = by_tag
    summary["pairs"] = [{"line": e.line, "chosen": rewards[2 * k], "rejected": rewards[2 * k + 1]}
                        for k, e in enumerate(examples)]
    return summary


def _numbers(margins: list[float]) -> dict:
    from evalhub.stats.pairwise import wilson_ci

    right = sum(m > 0 for m in margins)
    n = len(margins)
    return {"n": n, "accuracy": right / n if n else None,
            "accuracy_ci": wilson_ci(right, n - right, 0) if n else None,
            "margin": sum(margins) / n if n else None}
