"""The contamination check: golden items found in training data are reported, clean data gives nothing."""

from __future__ import annotations

import pytest

from evalhub.errors import UserError
from evalhub.golden import load_golden
from evalhub.records import GoldenItem
from tests.train_helpers import read_jsonl, write_jsonl
from trainers.contamination import contamination_report

LONG = GoldenItem(id="long", instruction="Summarise the following passage about the river towns.",
                  input="The old river towns traded salt and wool along the water for three hundred years before the railway came.",
                  output="River towns traded salt and wool until the railway.")


def test_the_toy_training_data_is_clean(toy_world, toy_manifest):
    golden = load_golden(toy_world / toy_manifest["golden"])
    assert contamination_report(golden, toy_world / toy_manifest["sft"]) == []
    assert contamination_report(golden, toy_world / toy_manifest["dpo"]) == []


def test_a_copied_golden_item_is_reported_with_its_line(toy_world, toy_manifest, tmp_path):
    golden = load_golden(toy_world / toy_manifest["golden"])
    rows = read_jsonl(toy_world / toy_manifest["sft"])[:50]
    leaked = golden[7]
    # Copied with different spacing and case: still the same words in the same order.
    rows.insert(20, {"instruction": leaked.instruction.upper(), "input": "  " + leaked.input,
                     "output": leaked.output.replace(" ", "  ")})
    findings = contamination_report(golden, write_jsonl(tmp_path / "train.jsonl", rows))
    # One finding per item; the n-gram (answer included) outranks the shared prompt.
    assert [(f.item_id, f.kind, f.training_line) for f in findings] == [(leaked.id, "ngram", 21)]


def test_the_same_question_with_another_answer_is_a_near_duplicate(toy_world, toy_manifest, tmp_path):
    golden = load_golden(toy_world / toy_manifest["golden"])
    item = golden[3]
    path = write_jsonl(tmp_path / "train.jsonl", [
        {"prompt": f"{item.instruction}\n\n{item.input}!", "completion": "In Zorvish: something else."}])
    (finding,) = contamination_report(golden, path)
    assert (finding.item_id, finding.kind, finding.training_line) == (item.id, "near_duplicate", 1)


def test_long_items_need_a_shared_13_gram(tmp_path):
    words = LONG.input.split()
    thirteen = " ".join(words[2:15])
    twelve = " ".join(words[2:14])
    path = write_jsonl(tmp_path / "train.jsonl", [
        {"messages": [{"role": "user", "content": f"Unrelated start. {twelve} unrelated end."},
                      {"role": "assistant", "content": "ok"}]},
        {"messages": [{"role": "user", "content": "Tell me a story."},
                      {"role": "assistant", "content": f"Once, {thirteen}, and so on."}]},
    ])
    findings = contamination_report([LONG], path)
    assert [(f.item_id, f.kind, f.training_line) for f in findings] == [("long", "ngram", 2)]
    assert findings[0].evidence == thirteen.lower().replace(",", "")
    assert contamination_report([LONG], path, n=12)[0].training_line == 1  # n is a parameter


def test_preference_data_is_checked_on_both_answers(tmp_path):
    item = GoldenItem(id="g1", instruction="Translate into Zorvish.", input="river wants water",
                      output="In Zorvish: mirka thilo kalo.")
    path = write_jsonl(tmp_path / "dpo.jsonl", [
        {"prompt": "Translate into Zorvish.\n\nriver wants water today", "chosen": "ok",
         "rejected": "In Zorvish: mirka thilo kalo."}])
    assert contamination_report([item], path) == []  # prompt differs and the item is not there in order
    write_jsonl(path, [{"prompt": "Translate into Zorvish.\n\nriver wants water", "chosen": "no",
                        "rejected": "In Zorvish: mirka thilo kalo."}])
    assert [f.kind for f in contamination_report([item], path)] == ["ngram"]


def test_strict_training_refuses_contaminated_data_before_training(toy_world, toy_manifest, tmp_path):
    from trainers.sft import SFTSettings, train_sft

    golden_file = toy_world / toy_manifest["golden"]
    rows = read_jsonl(toy_world / toy_manifest["sft"])[:30] + read_jsonl(golden_file)[:2]
    for row in rows[-2:]:
        del row["id"], row["tags"]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    output = tmp_path / "adapter"
    with pytest.raises(UserError, match=r"2 golden item\(s\) appear in .*drop --strict"):
        train_sft(SFTSettings(base=toy_world / "base", data=data, output=output, golden=[golden_file], strict=True))
    assert not output.exists() and [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]
