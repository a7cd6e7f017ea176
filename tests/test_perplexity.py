"""Perplexity on the hf backend: equal to lm-eval's rolling log-likelihood; windows; data files; the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from evalhub.errors import UserError
from evalhub.generate import BackendOptions
from evalhub.perplexity import load_texts, measure_perplexity, sliding_windows

WINDOW = 8  # paragraphs are 20-40 tokens: several windows each, so the windows really roll


@pytest.fixture(scope="module")
def paragraphs(toy_world, toy_manifest) -> list[str]:
    return [line for line in load_texts(toy_world / toy_manifest["heldout_general"])[0].splitlines() if line]


@pytest.fixture(scope="module")
def disjoint(toy_world, toy_adapter, paragraphs):
    return measure_perplexity(toy_world / "base", toy_adapter, paragraphs, window=WINDOW, stride=WINDOW, backend="hf",
                              options=BackendOptions(batch_size=16))


def _lm_eval_bits_per_byte(toy_world, adapter, paragraphs) -> float:
    """lm-eval's hf model, loglikelihood_rolling over the same paragraphs, as its bits_per_byte metric."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    # logits_cache=False: lm-eval 0.4.13's one-token-continuation cache gives a wrong total for a document whose
    # first window equals another document's in the same batch (the toy's paragraphs share openings).
    lm = HFLM(pretrained=str(toy_world / "base"), peft=str(adapter) if adapter else None, max_length=WINDOW,
              add_bos_token=False, batch_size=16, device="cpu", dtype="float32", logits_cache=False)
    requests = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(text,), idx=k)
                for k, text in enumerate(paragraphs)]
    loglikelihoods = lm.loglikelihood_rolling(requests, disable_tqdm=True)
    return -sum(loglikelihoods) / math.log(2) / sum(len(text.encode("utf-8")) for text in paragraphs)


@pytest.mark.parametrize("role", ["base", "tuned"])
def test_disjoint_windows_equal_lm_eval_rolling_loglikelihood(toy_world, toy_adapter, paragraphs, disjoint, role):
    expected = _lm_eval_bits_per_byte(toy_world, toy_adapter if role == "tuned" else None, paragraphs)
    assert disjoint[role].bits_per_byte == pytest.approx(expected, rel=1e-4)


def test_result_fields(disjoint, paragraphs):
    base, tuned = disjoint["base"], disjoint["tuned"]
    assert base.bytes == tuned.bytes == sum(len(p.encode("utf-8")) for p in paragraphs)
    assert base.tokens == tuned.tokens > 20 * len(paragraphs)
    for result in (base, tuned):
        nats_per_token = result.bits_per_byte * math.log(2) * result.bytes / result.tokens
        assert result.perplexity == pytest.approx(math.exp(nats_per_token), rel=1e-9)
    assert base.perplexity != tuned.perplexity  # the adapter is really applied for one pass and off for the other
    assert set(base.to_dict()) == {"perplexity", "bits_per_byte", "tokens", "bytes"}


def test_overlapping_windows_score_each_token_once_with_more_context(toy_world, paragraphs):
    text = ["\n".join(paragraphs)]
    disjoint = measure_perplexity(toy_world / "base", None, text, window=32, backend="hf")
    overlapping = measure_perplexity(toy_world / "base", None, text, window=32, stride=8, backend="hf")
    assert list(overlapping) == ["base"]
    assert overlapping["base"].tokens == disjoint["base"].tokens
    assert overlapping["base"].bits_per_byte != disjoint["base"].bits_per_byte


@pytest.mark.parametrize("length,window,stride", [(1, 4, 4), (10, 4, 4), (10, 4, 1), (10, 4, 3), (9, 16, 8)])
def test_sliding_windows_cover_every_target_once(length, window, stride):
    sequence = list(range(100, 100 + length + 1))  # a prefix token, then `length` tokens to score
    windows = sliding_windows(sequence, window, stride)
    scored = [t for w in windows for t in w.tokens[len(w.tokens) - w.scored:]]
    assert scored == sequence[1:]
    for w in windows:
        assert len(w.tokens) - 1 <= window  # inputs fed to the model
        assert w.scored <= len(w.tokens) - 1  # every scored token has at least one token before it
        assert tuple(sequence[sequence.index(w.tokens[0]):][: len(w.tokens)]) == w.tokens  # contiguous
    later = windows[1:]  # after the first window, each scores at most `stride` tokens with a full window before
    assert all(w.scored <= stride and len(w.tokens) - 1 == window for w in later)


def test_load_texts(tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("line one\nline two\n", encoding="utf-8")
    assert load_texts(plain) == ["line one\nline two\n"]
    rows = tmp_path / "docs.jsonl"
    rows.write_text('{"text": "first"}\n\n{"text": "second", "source": "x"}\n', encoding="utf-8")
    assert load_texts(rows) == ["first", "second"]
    rows.write_text('{"text": "first"}\n{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"docs.jsonl:2: expected an object with a string field 'text'"):
        load_texts(rows)
    rows.write_text('{"text": "first"}\n{oops\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"docs.jsonl:2: bad JSON"):
        load_texts(rows)
    with pytest.raises(UserError, match="no such file"):
        load_texts(tmp_path / "missing.txt")


def test_bad_settings_are_user_errors(toy_world):
    with pytest.raises(UserError, match="--window 600 does not fit the hf backend's context of 512 tokens"):
        measure_perplexity(toy_world / "base", None, ["some text"], window=600, backend="hf")
    with pytest.raises(UserError, match="--stride 65 must be between 1 and the window"):
        measure_perplexity(toy_world / "base", None, ["some text"], window=64, stride=65, backend="hf")
    with pytest.raises(UserError, match="no text to measure"):
        measure_perplexity(toy_world / "base", None, ["", ""], backend="hf")
    with pytest.raises(UserError, match="needs the model weights"):
        measure_perplexity("served-name", None, ["some text"], backend="openai")


def test_cli_writes_json(toy_world, toy_manifest, toy_adapter, tmp_path, disjoint):
    import importlib

    from typer.testing import CliRunner

    from evalhub.cli import COMMAND_MODULES
    from evalhub.cli._app import app

    for name in COMMAND_MODULES:  # as `evalhub` itself does: every command registers itself
        importlib.import_module(f"evalhub.cli.{name}")

    out = tmp_path / "ppl.json"
    data = toy_world / toy_manifest["heldout_general"]
    done = CliRunner().invoke(app, ["perplexity", str(toy_world / "base"), "--adapter", str(toy_adapter), "--data",
                                    str(data), "--window", "64", "--backend", "hf", "--json", str(out)])
    assert done.exit_code == 0, done.output
    summary = json.loads(out.read_text())
    assert {"perplexity", "bits_per_byte", "tokens", "bytes"} <= set(summary) and "base" in summary
    assert summary["bytes"] == data.stat().st_size
    assert "tuned" in done.stdout and "base" in done.stdout
    # The whole file as one text: the same tokens as its paragraphs, plus the newlines between them.
    assert summary["tokens"] > disjoint["tuned"].tokens


def test_cli_bad_input_exits_2(tmp_path, toy_world):
    done = subprocess.run([sys.executable, "-m", "evalhub", "perplexity", str(toy_world / "base"), "--data",
                           str(tmp_path / "missing.txt")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and "no such file" in done.stderr
