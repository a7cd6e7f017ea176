"""The identities a stored run records for its two models (ModelRefs with weight hashes), checked to belong
together before anything is spent."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from evalhub.errors import UserError
from evalhub.models.kinds import ADAPTER_CONFIG, ADAPTER_WEIGHTS, inspect_model, same_base
from evalhub.records import ModelRef


def describe_models(base: str, tuned: str, served: bool = False) -> tuple[ModelRef, ModelRef]:
    """ModelRefs for BASE and TUNED; raise UserError when a path is missing or the adapter's base differs.

    `served`: both are model names on an OpenAI-compatible server, not local paths.
    """
    if served:
        refs = [ModelRef(model_id=hashlib.sha256(f"served:{name}".encode()).hexdigest()[:16], kind="served", path=name)
                for name in (base, tuned)]
        return refs[0], refs[1]
    base_dir = Path(base).expanduser()
    # A stored run must say which weights it measured, so the base is a local folder here, never a hub id.
    if not (base_dir / "config.json").is_file():
        raise UserError(f"{base}: not a model folder (no config.json); pass a local model saved with save_pretrained")
    base_hash = weights_fingerprint(base_dir)
    base_ref = ModelRef(model_id=f"base-{base_hash[:16]}", kind="base", path=str(base_dir.resolve()), base_hash=base_hash)
    tuned_dir = Path(tuned).expanduser()
    if (tuned_dir / ADAPTER_CONFIG).is_file():
        info = inspect_model(tuned_dir)
        if info.adapter_base and not same_base(info.adapter_base, base):
            raise UserError(f"the adapter {tuned} was trained on {info.adapter_base}, not {base}; pass that base model as BASE")
        adapter_hash = file_sha256(tuned_dir / ADAPTER_WEIGHTS)
        tuned_ref = ModelRef(model_id=f"adapter-{adapter_hash[:16]}", kind="adapter", path=str(tuned_dir.resolve()),
                             base_path=base_ref.path, adapter_hash=adapter_hash, base_hash=base_hash)
    elif (tuned_dir / "config.json").is_file():
        tuned_hash = weights_fingerprint(tuned_dir)
        tuned_ref = ModelRef(model_id=f"full-{tuned_hash[:16]}", kind="full", path=str(tuned_dir.resolve()),
                             base_hash=tuned_hash)
    else:
        raise UserError(f"{tuned}: neither a LoRA adapter folder (adapter_config.json) nor a model folder (config.json)")
    return base_ref, tuned_ref


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_fingerprint(folder: Path) -> str:
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
