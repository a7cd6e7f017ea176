"""Identify the two models of a comparison and check they belong together, before anything is spent."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from evalhub.errors import UserError
from evalhub.records import ModelRef


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights_fingerprint(folder: Path) -> str:
    """A cheap fingerprint of a model folder: config.json plus each safetensors header (names, shapes,
    dtypes, offsets) and size. Hashing every byte of a 16 GB checkpoint would cost minutes per run."""
    digest = hashlib.sha256()
    config = folder / "config.json"
    if config.exists():
        digest.update(config.read_bytes())
    for weights in sorted(folder.glob("*.safetensors")):
        with weights.open("rb") as handle:
            (header_length,) = struct.unpack("<Q", handle.read(8))
            digest.update(handle.read(header_length))
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()


def _same_base(recorded: str, base: str) -> bool:
    if recorded == base:
        return True
    recorded_path, base_path = Path(recorded).expanduser(), Path(base).expanduser()
    if recorded_path.exists() and base_path.exists():
        return recorded_path.resolve() == base_path.resolve()
    # A hub id recorded at training time ("org/name") matches a local copy of that model by folder name.
    return recorded_path.name == base_path.name


def describe_models(base: str, tuned: str, served: bool = False) -> tuple[ModelRef, ModelRef]:
    """ModelRefs for BASE and TUNED; raise UserError when a path is missing or the adapter's base differs.

    `served`: both are model names on an OpenAI-compatible server, not local paths.
    """
    if served:
        refs = [ModelRef(model_id=hashlib.sha256(f"served:{name}".encode()).hexdigest()[:16], kind="served", path=name)
                for name in (base, tuned)]
        return refs[0], refs[1]
    base_dir = Path(base).expanduser()
    if not (base_dir / "config.json").is_file():
        raise UserError(f"{base}: not a model folder (no config.json); pass a local model saved with save_pretrained")
    base_hash = _weights_fingerprint(base_dir)
    base_ref = ModelRef(model_id=f"base-{base_hash[:16]}", kind="base", path=str(base_dir.resolve()), base_hash=base_hash)
    tuned_dir = Path(tuned).expanduser()
    adapter_config = tuned_dir / "adapter_config.json"
    if adapter_config.is_file():
        weights = tuned_dir / "adapter_model.safetensors"
        if not weights.is_file():
            raise UserError(f"{tuned}: adapter_model.safetensors is missing; evalhub loads only safetensors adapters")
        recorded = json.loads(adapter_config.read_text()).get("base_model_name_or_path") or ""
        if recorded and not _same_base(recorded, base):
            raise UserError(f"the adapter {tuned} was trained on {recorded}, not {base}; pass that base model as BASE")
        adapter_hash = _sha256(weights)
        tuned_ref = ModelRef(model_id=f"adapter-{adapter_hash[:16]}", kind="adapter", path=str(tuned_dir.resolve()),
                             base_path=base_ref.path, adapter_hash=adapter_hash, base_hash=base_hash)
    elif (tuned_dir / "config.json").is_file():
        tuned_hash = _weights_fingerprint(tuned_dir)
        tuned_ref = ModelRef(model_id=f"full-{tuned_hash[:16]}", kind="full", path=str(tuned_dir.resolve()),
                             base_hash=tuned_hash)
    else:
        raise UserError(f"{tuned}: neither a LoRA adapter folder (adapter_config.json) nor a model folder (config.json)")
    return base_ref, tuned_ref
