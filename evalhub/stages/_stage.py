"""The one interface every stage of a comparison has, and what a stage is given.

A stage (generations, judgments, an answer metric, perplexity, benchmarks) is an object with

    name          its checkpoint in the work folder, its `stage` in the store, and how progress names it
    own_models    True when it loads models of its own (lm-eval): it runs after the shared engine is released
    wanted(ctx)   whether this comparison asks for it
    run(ctx, results) -> its typed result, checkpointed in the work folder (a resumed run reuses it)
    summarize(result, summary, ctx)   writes its part of the RunSummary
    store_rows(result, record, ctx)   adds its rows to the RunRecord the store writes in one transaction

so `compare` runs them in order and the summary and the store record are loops over them (evalhub/stages/
__init__.py). docs/adding-a-stage.md walks through adding one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, TypeVar

from pydantic import BaseModel

from evalhub.contracts import CompareRequest, RunSummary
from evalhub.records import GoldenItem, RunRecord

if TYPE_CHECKING:
    from evalhub.workdir import WorkFolder

Say = Callable[[str], None]
Results = Mapping[str, Any]  # stage name -> that stage's result, for the stages that ran
ResultT = TypeVar("ResultT", bound=BaseModel)


@dataclass
class RunContext:
    """What every stage of one comparison may read: the checked request and inputs, the work folder that
    holds the checkpoints, and where progress goes."""

    request: CompareRequest
    golden: dict[str, list[GoldenItem]]           # golden file -> its items, as written
    items: list[GoldenItem]                       # every item, its id namespaced by its file ("0:item-7")
    judge: str | None                             # the judge's (or panel's) name, when the run judges
    perplexity_texts: dict[str, list[str]] = field(default_factory=dict)
    work: "WorkFolder | None" = None
    db: Any = None                                # the store (its calibrations, the adapter's training record)
    say: Say = print

    def checkpoint(self, name: str, result_type: type[ResultT], compute: Callable[[], ResultT]) -> ResultT:
        """A stage's typed result: from its checkpoint when an earlier attempt finished it, else computed and
        saved. Results are stored as JSON, so they cross a restart as they are."""
        data = self.work.stage(name, lambda: compute().model_dump(mode="json"), self.say)
        return result_type.model_validate(data)

    def golden_file_and_id(self, key: str) -> tuple[str, str]:
        """The golden file and the item's own id of a namespaced item id."""
        from evalhub.stages.inputs import split_key

        return split_key(key, self.request.golden)


class Stage(Protocol):
    name: str
    own_models: bool

    def wanted(self, context: RunContext) -> bool: ...

    def run(self, context: RunContext, results: Results) -> Any: ...

    def summarize(self, result: Any, summary: RunSummary, context: RunContext) -> None: ...

    def store_rows(self, result: Any, record: RunRecord, context: RunContext) -> None: ...
