"""Build the toy world offline: a BPE tokenizer, a tiny base model of one family, and the data sets around it.

The toy world is evalhub's embedded default and the fixture of every test: real `from_pretrained` folders,
real safetensors, real chat template, so the same code paths that load a real model load this one.
`--arch` picks the model family (evalhub/toy/families.py): Llama by default, or Qwen2, Mistral, Gemma-2 or
Phi-3, each with its own config class, distinctive features, chat template and special tokens; every family
learns the same world (toy/world.py) and writes the same manifest keys.
The build is deterministic (same seed, same machine: byte-identical tokenizer, identical weights) and is
cached under a folder keyed by a hash of the seed, this code, the world's text and the family's spec (not
the other families'), so it is paid once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from evalhub.errors import UserError
from evalhub.toy.families import DEFAULT_FAMILY, Family, family
from evalhub.toy.world import ToyWorld, make_world

# Bump when the output format changes without a code change in this package (e.g. a new manifest key).
TOY_FORMAT = 1
TASK_NAME = "toy_general"
PRETRAIN_STEPS, BLOCK, BATCH = 400, 128, 16
# The files whose code decides every family's output; each family's own spec is hashed on top.
_SHARED_SOURCES = ("build.py", "world.py")


def default_cache_dir() -> Path:
    return Path(os.environ.get("EVALHUB_CACHE", Path.home() / ".cache" / "evalhub")) / "toy"


def _content_key(seed: int, spec: Family) -> str:
    digest = hashlib.sha256(f"seed={seed};format={TOY_FORMAT}".encode())
    for name in _SHARED_SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    digest.update(spec.spec_hash().encode())
    return digest.hexdigest()[:16]


def world_folder_name(seed: int, arch: str = DEFAULT_FAMILY) -> str:
    """The cache folder's name of a world: `seed0-KEY` for Llama (as it always was), `qwen2-seed0-KEY` etc."""
    key = _content_key(seed, family(arch))
    return f"seed{seed}-{key}" if arch == DEFAULT_FAMILY else f"{arch}-seed{seed}-{key}"


def build_toy_world(seed: int = 0, out: Path | None = None, quiet: bool = False, arch: str = DEFAULT_FAMILY) -> Path:
    """Build (or reuse) the toy world of family `arch` for `seed` and return its folder."""
    spec = family(arch)
    key = _content_key(seed, spec)
    dest = Path(out).expanduser() if out else default_cache_dir() / world_folder_name(seed, arch)
    # A finished world is complete (it is renamed into place whole), so it is reused without a lock, and a
    # folder that cannot take one is refused before anything, lock file included, is written beside it.
    if _holds_world(dest, key):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {dest.parent} ({error.strerror}); choose another --out folder"
                        + ("" if out else " or set EVALHUB_CACHE")) from None
    # Processes asking for the same world at once (parallel tests, a demo beside them) build it once.
    with _exclusive(dest.parent / f".{dest.name}.lock"):
        return _build_once(seed, key, dest, quiet, spec)


def _holds_world(dest: Path, key: str) -> bool:
    """True when `dest` holds this toy world; a UserError when it holds anything else."""
    if dest.exists() and not dest.is_dir():
        raise UserError(f"{dest} is a file; choose an empty or new --out folder")
    manifest = dest / "manifest.json"
    if manifest.exists():
        try:
            if json.loads(manifest.read_text()).get("key") == key:
                return True
        except (OSError, ValueError, AttributeError):
            pass
        raise UserError(f"{dest} holds a different toy world; choose an empty --out folder or delete it")
    try:
        empty = not dest.exists() or not any(dest.iterdir())
    except OSError as error:
        raise UserError(f"cannot read {dest} ({error.strerror}); choose another --out folder") from None
    if not empty:
        raise UserError(f"{dest} is not empty and holds no toy world; choose an empty --out folder")
    return False


@contextlib.contextmanager
def _exclusive(path: Path):
    """Hold an exclusive lock on `path`, and remove the lock file when done, so no `.lock` is left behind.

    filelock keeps its file after release (waiters must share one inode); here the holder unlinks it while
    still holding the lock, and a waiter that then wins the lock on the unlinked inode sees that the path no
    longer names its file and tries again on the new one. Without fcntl (Windows), filelock, file kept.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        from filelock import FileLock

        with FileLock(str(path)):
            yield
        return
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise UserError(f"cannot create the lock file {path} ({error.strerror}); choose another --out folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_dev, current.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the previous holder removed this file: lock the one now at the path
    try:
        yield
    finally:
        try:
            os.unlink(path)
        finally:
            os.close(fd)


def _build_once(seed: int, key: str, dest: Path, quiet: bool, spec: Family) -> Path:
    # Checked again under the lock: another process may have finished the same world meanwhile.
    if _holds_world(dest, key):
        return dest
    # Build beside the destination and rename at the end, so a killed build leaves nothing half-written.
    staging = Path(tempfile.mkdtemp(prefix=".toy-build-", dir=dest.parent))
    staging.chmod(0o755)
    try:
        world = make_world(seed)
        _write_data(world, staging, dest)
        tokenizer = _train_tokenizer(world, staging / "base", spec)
        accuracy = _pretrain_base(world, tokenizer, staging / "base", seed, quiet, spec)
        _write_json(staging / "manifest.json", {
            "key": key, "seed": seed, "arch": spec.name, "base": "base", "sft": "data/sft.jsonl", "dpo": "data/dpo.jsonl",
            "golden": "data/golden.jsonl", "heldout_general": "data/heldout_general.txt",
            "heldout_domain": "data/heldout_domain.txt", "tasks_path": "tasks", "task_name": TASK_NAME,
            "base_general_accuracy": round(accuracy, 4),
            "attention_modules": list(spec.attention_modules),
        })
        if dest.exists():
            dest.rmdir()
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _write_data(world: ToyWorld, root: Path, final: Path) -> None:
    (root / "data").mkdir(parents=True)
    (root / "tasks").mkdir()
    _write_jsonl(root / "data" / "sft.jsonl", world.sft_rows)
    _write_jsonl(root / "data" / "dpo.jsonl", world.dpo_rows)
    _write_jsonl(root / "data" / "golden.jsonl", world.golden_rows)
    (root / "data" / "heldout_general.txt").write_text("\n".join(world.heldout_general) + "\n", encoding="utf-8")
    (root / "data" / "heldout_domain.txt").write_text("\n".join(world.heldout_domain) + "\n", encoding="utf-8")
    _write_jsonl(root / "tasks" / f"{TASK_NAME}.jsonl", world.general_mc)
    # lm-eval resolves data_files against the working directory, so the task names its JSONL by the
    # absolute path it will have once the staging folder is renamed into place.
    (root / "tasks" / f"{TASK_NAME}.yaml").write_text(
        f"task: {TASK_NAME}\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        f"    test: {(final.resolve() / 'tasks' / f'{TASK_NAME}.jsonl').as_posix()}\n"
        "output_type: multiple_choice\n"
        "test_split: test\n"
        'doc_to_text: "{{question}}"\n'
        'doc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{answer}}"\n'
        "metric_list:\n"
        "  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n"
        "metadata:\n  version: 1.0\n",
        encoding="utf-8",
    )


def _train_tokenizer(world: ToyWorld, base: Path, spec: Family):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = world.pretrain_texts + world.heldout_general + [q + " " + a for q, a in world.chat_pretrain]
    corpus += [r["instruction"] + "\n\n" + r["input"] + "\n" + r["output"] for r in world.sft_rows + world.golden_rows]
    corpus += world.heldout_domain
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=list(spec.special_tokens), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    if spec.add_bos:
        bos = spec.bos_token
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
    named = {role: getattr(spec, role) for role in ("bos_token", "eos_token", "pad_token", "unk_token")}
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, **{k: v for k, v in named.items() if v is not None},
                                     chat_template=spec.chat_template, model_max_length=512)
    hf_tok.save_pretrained(base)
    return hf_tok


def _pretrain_base(world: ToyWorld, tokenizer, base: Path, seed: int, quiet: bool, spec: Family) -> float:
    """Pretrain the tiny model on the general facts; return its multiple-choice accuracy on them."""
    import torch

    threads = torch.get_num_threads()
    if spec.pretrain_threads:
        torch.set_num_threads(spec.pretrain_threads)
    try:
        return _pretrain(world, tokenizer, base, seed, quiet, spec)
    finally:
        torch.set_num_threads(threads)


def _pretrain(world: ToyWorld, tokenizer, base: Path, seed: int, quiet: bool, spec: Family) -> float:
    import torch
    import transformers
    from tqdm import tqdm

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    config = getattr(transformers, spec.config_class)(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, dtype="float32", **{**spec.shape, **spec.config})
    model = getattr(transformers, spec.model_class)(config)
    docs = [tokenizer(t + tokenizer.eos_token, add_special_tokens=True)["input_ids"] for t in world.pretrain_texts]
    docs += [tokenizer.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                                           tokenize=True, return_dict=False) for q, a in world.chat_pretrain]
    docs = [list(d["input_ids"]) if isinstance(d, dict) else list(d) for d in docs]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=PRETRAIN_STEPS, pct_start=0.1)
    model.train()
    stream: list[int] = []
    for _ in tqdm(range(PRETRAIN_STEPS), desc="pretraining toy base", disable=quiet, file=sys.stderr):
        while len(stream) < BLOCK * BATCH:
            for i in torch.randperm(len(docs), generator=generator).tolist():
                stream.extend(docs[i])
        batch = torch.tensor(stream[: BLOCK * BATCH]).view(BATCH, BLOCK)
        stream = stream[BLOCK * BATCH:]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    model.eval()
    model.generation_config.do_sample = False
    if spec.extra_eos:  # a turn ends with its own token as well as EOS: generation stops at either
        model.generation_config.eos_token_id = [tokenizer.eos_token_id,
                                                *tokenizer.convert_tokens_to_ids(list(spec.extra_eos))]
    model.save_pretrained(base, safe_serialization=True)
    return _multiple_choice_accuracy(model, tokenizer, world.general_mc)


def _multiple_choice_accuracy(model, tokenizer, items: list[dict]) -> float:
    import torch

    correct = 0
    with torch.no_grad():
        for item in items:
            context = tokenizer(item["question"])["input_ids"]
            scores = []
            for choice in item["choices"]:
                ids = tokenizer(item["question"] + " " + choice)["input_ids"]
                logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].log_softmax(-1)
                target = torch.tensor(ids[1:])
                token_logprobs = logits.gather(1, target[:, None])[:, 0]
                scores.append(token_logprobs[len(context) - 1:].sum().item())
            correct += int(max(range(len(scores)), key=scores.__getitem__) == item["answer"])
    return correct / len(items)
