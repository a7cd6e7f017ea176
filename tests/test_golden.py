"""Golden sets: the loader's checks, `evalhub golden validate`, and the sets shipped in golden_sets/."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evalhub.errors import UserError
from evalhub.golden import load_golden

REPO = Path(__file__).resolve().parents[1]
GOOD = {"id": "q1", "instruction": "Name the capital of France.", "output": "Paris."}


def _write(tmp_path: Path, content: bytes | str, name: str = "set.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _line(**fields) -> str:
    return json.dumps({**GOOD, **fields}, ensure_ascii=False)


def test_bom_crlf_and_blank_lines_are_accepted(tmp_path):
    text = "\ufeff" + _line() + "\r\n\r\n" + _line(id="q2", input="Some context", tags=["geo"]) + "\r\n"
    items = load_golden(_write(tmp_path, text))
    assert [i.id for i in items] == ["q1", "q2"]
    assert items[0].instruction == "Name the capital of France."   # no BOM, no \r left behind
    assert items[1].output == "Paris." and items[1].prompt == "Name the capital of France.\n\nSome context"
    assert items[1].tags == ("geo",)


def test_line_separator_characters_inside_strings_do_not_split_a_line(tmp_path):
    items = load_golden(_write(tmp_path, _line(output="one\u2028two\u0085three") + "\n"))
    assert items[0].output == "one\u2028two\u0085three"


@pytest.mark.parametrize("content, line, words", [
    (_line() + "\n{not json\n", 2, "bad JSON"),
    (_line() + "\n" + json.dumps({"id": "q2", "output": "x"}) + "\n", 2, "missing or empty field 'instruction'"),
    (_line(output="   ") + "\n", 1, "missing or empty field 'output'"),
    (_line() + "\n" + _line(instruction="Other") + "\n", 2, "duplicate id 'q1' (first on line 1)"),
    (_line(output=42) + "\n", 1, "'output' must be a string"),
    (_line(tags="geo") + "\n", 1, "'tags' must be a list"),
    ("[1, 2]\n", 1, "expected a JSON object"),
    (_line(answer="x") + "\n", 1, "unknown field"),
])
def test_each_problem_names_file_and_line(tmp_path, content, line, words):
    path = _write(tmp_path, content)
    with pytest.raises(UserError) as error:
        load_golden(path)
    assert f"{path}:{line}:" in str(error.value)
    assert words in str(error.value)
    assert "\n" not in str(error.value)


def test_invalid_utf8_names_its_line(tmp_path):
    path = _write(tmp_path, (_line() + "\n").encode() + b'{"id": "q2", "instruction": "caf\xe9", "output": "x"}\n')
    with pytest.raises(UserError, match=r":2: invalid UTF-8"):
        load_golden(path)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(UserError, match="empty"):
        load_golden(_write(tmp_path, "\n\n"))
    with pytest.raises(UserError, match="no such golden set file"):
        load_golden(tmp_path / "absent.jsonl")


def test_cli_validate_exit_codes_and_writes_nothing(tmp_path):
    bad = _write(tmp_path, _line() + "\n" + _line() + "\n", "bad.jsonl")
    env_cwd = tmp_path  # a store would appear here if the command wrote one
    ok = subprocess.run([sys.executable, "-m", "evalhub", "golden", "validate", str(REPO / "golden_sets" / "toy_zorvish.jsonl")],
                        capture_output=True, text=True, cwd=env_cwd, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "100 items ok" in ok.stdout
    failed = subprocess.run([sys.executable, "-m", "evalhub", "golden", "validate", str(bad)],
                            capture_output=True, text=True, cwd=env_cwd, timeout=120)
    assert failed.returncode == 2
    assert failed.stderr.strip() == f"error: {bad}:2: duplicate id 'q1' (first on line 1); ids must be unique"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_cli_validate_refuses_an_id_in_two_files_as_compare_does(tmp_path):
    from evalhub.stages.inputs import namespaced_items

    first = _write(tmp_path, _line(id="d1") + "\n" + _line(id="d2") + "\n", "a.jsonl")
    second = _write(tmp_path, _line(id="d3") + "\n" + _line(id="d1") + "\n", "b.jsonl")
    with pytest.raises(UserError) as compare_says:  # what compare refuses the two sets with
        namespaced_items({str(first): load_golden(first), str(second): load_golden(second)})
    proc = subprocess.run([sys.executable, "-m", "evalhub", "golden", "validate", str(first), str(second)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == f"error: {compare_says.value}"
    assert "'d1' is in both" in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("name", ["toy_zorvish.jsonl", "general_assistant.jsonl"])
def test_shipped_golden_sets_are_valid_one_skill_items(name):
    items = load_golden(REPO / "golden_sets" / name)
    assert len(items) == 100
    assert all(item.tags for item in items), "every item names its skill in tags"
    assert len({item.prompt for item in items}) == 100, "no two items ask the same thing"


def test_toy_golden_set_ships_the_toy_worlds_items(toy_world, toy_manifest):
    shipped = load_golden(REPO / "golden_sets" / "toy_zorvish.jsonl")
    built = load_golden(toy_world / toy_manifest["golden"])
    assert shipped == built
