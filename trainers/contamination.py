"""Did the golden set leak into the training data? A golden item that the model saw during training measures
memory, not skill, so its win counts for nothing.

Two checks, on lower-cased word tokens (punctuation, case and spacing do not hide a copy):
  ngram           the item (prompt + ideal answer) shares an n-gram with a training example (n=13, the
                  usual decontamination length); an item shorter than n counts when all of it appears
                  in one training example in order.
  near_duplicate  the item's prompt equals a training example's prompt once normalised: the same
                  question was trained on, whatever answer it was given.
The golden set is small and the training file may be large, so the golden n-grams are indexed and the
training file is streamed once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from evalhub.records import GoldenItem
from trainers.data import PreferenceExample, load_training_examples

WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ContaminationFinding:
    """One golden item found in the training data, with the first training line that holds it."""

    item_id: str
    kind: str  # 'ngram' or 'near_duplicate'
    training_line: int
    evidence: str  # the shared words, or the shared prompt

    def describe(self, training_file: Path | str) -> str:
        return f"golden item {self.item_id!r}: {self.kind} of {training_file}:{self.training_line} ({self.evidence!r})"


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(WORD.findall(text.lower()))


def _example_texts(example) -> tuple[str, list[str]]:
    """(prompt text, the full texts the model was trained on) of one training example."""
    prompt = "\n".join(m["content"] for m in example.prompt)
    answers = [example.chosen, example.rejected] if isinstance(example, PreferenceExample) else [example.completion]
    return prompt, [f"{prompt}\n{answer}" for answer in answers]


def contamination_report(golden_items: list[GoldenItem], training_file: Path | str, n: int = 13
                         ) -> list[ContaminationFinding]:
    """Golden items that appear in `training_file`: one finding per item, in golden-set order."""
    # Index what to look for: each golden n-gram (or whole short item) points to the items holding it.
    wanted: dict[tuple[str, ...], list[str]] = {}
    for item in golden_items:
        tokens = _tokens(f"{item.prompt}\n{item.output}")
        size = min(n, len(tokens))
        for start in range(len(tokens) - size + 1):
            wanted.setdefault(tokens[start:start + size], []).append(item.id)
    sizes = sorted({len(gram) for gram in wanted if gram})
    prompts: dict[tuple[str, ...], list[str]] = {}
    for item in golden_items:
        prompts.setdefault(_tokens(item.prompt), []).append(item.id)

    found: dict[tuple[str, str], ContaminationFinding] = {}  # (item id, kind) -> first finding
    for example in load_training_examples(training_file):
        prompt, texts = _example_texts(example)
        for item_id in prompts.get(_tokens(prompt), []):
            found.setdefault((item_id, "near_duplicate"),
                             ContaminationFinding(item_id, "near_duplicate", example.line, prompt))
        for text in texts:
            tokens = _tokens(text)
            for size in sizes:
                for start in range(len(tokens) - size + 1):
                    gram = tokens[start:start + size]
                    for item_id in wanted.get(gram, ()):
                        found.setdefault((item_id, "ngram"),
                                         ContaminationFinding(item_id, "ngram", example.line, " ".join(gram)))
    # One finding per item: an n-gram (the answer leaked too) outranks a shared prompt.
    return [found.get((item.id, "ngram")) or found[(item.id, "near_duplicate")]
            for item in golden_items if (item.id, "ngram") in found or (item.id, "near_duplicate") in found]
