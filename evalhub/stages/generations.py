"""The generations stage: both models answer every golden item, each answer saved as it arrives."""

from __future__ import annotations

from dataclasses import replace

from pydantic import BaseModel

from evalhub.records import Generation, RunRecord
from evalhub.stages._stage import Results, RunContext, Say

Answers = dict[str, dict[str, Generation]]  # role ('base', 'tuned') -> namespaced item id -> answer


class GenerationsResult(BaseModel):
    answers: Answers

    def usable(self, role: str, key: str) -> str | None:
        """The answer's text, or None when that generation failed."""
        generation = self.answers[role][key]
        return generation.output if generation.status == "ok" else None


class GenerationsStage:
    name = "generations"
    own_models = False

    def wanted(self, context: RunContext) -> bool:
        return bool(context.items)

    def run(self, context: RunContext, results: Results) -> GenerationsResult:
        from evalhub.generate import backend_options, generate_answers

        request = context.request

        def generate(done: Answers, save) -> Answers:
            return generate_answers(base=request.base, tuned=request.tuned, items=context.items,
                                    settings=request.decoding, backend=request.backend,
                                    options=backend_options(request.backend_options), done=done, on_answers=save,
                                    adapter_base=request.adapter_base)

        answers = context.work.generations(generate, context.say)  # checkpointed answer by answer
        report_failed_generations(answers, context.say)
        return GenerationsResult(answers=answers)

    def summarize(self, result: GenerationsResult, summary, context: RunContext) -> None:
        """Answers have no part of their own in the summary: the judge and the answer metrics report on them."""

    def store_rows(self, result: GenerationsResult, record: RunRecord, context: RunContext) -> None:
        settings = {**context.request.decoding.model_dump(mode="json"), "backend": context.request.backend}
        for role in ("base", "tuned"):
            for key, generation in result.answers[role].items():
                golden_file, item_id = context.golden_file_and_id(key)
                record.generations.append((role, golden_file, settings, replace(generation, item_id=item_id)))


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
