"""The identities a stored run records for its models (ModelRefs with weight hashes), checked before
anything is spent: every model a local folder (a stored run must say which weights it measured), every
adapter's base found."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Mapping

from evalhub.errors import UserError
from evalhub.models.kinds import ADAPTER_CONFIG, ADAPTER_WEIGHTS, inspect_model
from evalhub.models.plan import adapter_base as find_adapter_base
from evalhub.records import ModelRef


def describe_models(base: str, tuned: str, served: bool = False, adapter_base: str | None = None
                    ) -> tuple[ModelRef, ModelRef]:
    """ModelRefs for BASE (the baseline) and TUNED (the candidate), each a base model folder, an adapter
    folder or a full model folder; raise UserError when a path is missing or an adapter's base is not found.

    `served`: both are model names on an OpenAI-compatible server, not local paths. `adapter_base`: where
    the adapters' base model is now (--base).
    """
    if served:
        return served_ref(base), served_ref(tuned)
    base_ref = describe_model(base, adapter_base, (base, tuned), full_kind="base")
    return base_ref, describe_model(tuned, adapter_base, (base, tuned), full_kind="full")


def describe_named(models: Mapping[str, str], served: bool = False, adapter_base: str | None = None
                   ) -> dict[str, ModelRef]:
    """ModelRefs for an arena's named models. A full model folder that is the base of one of the adapters
    is recorded as a base (as a comparison's baseline is), any other as a full model."""
    if served:
        return {name: served_ref(argument) for name, argument in models.items()}
    arguments = tuple(models.values())
    refs = {name: describe_model(argument, adapter_base, arguments) for name, argument in models.items()}
    bases = {ref.base_path for ref in refs.values() if ref.kind == "adapter"}
    return {name: describe_model(models[name], adapter_base, arguments, full_kind="base")
            if ref.kind == "full" and ref.path in bases else ref for name, ref in refs.items()}


def served_ref(name: str) -> ModelRef:
    return ModelRef(model_id=hashlib.sha256(f"served:{name}".encode()).hexdigest()[:16], kind="served", path=name)


def describe_model(argument: str, adapter_base: str | None = None, others: tuple[str, ...] = (),
                   full_kind: str = "full") -> ModelRef:
    """One model's ModelRef: an adapter (with its base's path and hash) or a model folder (`full_kind`)."""
    folder = Path(argument).expanduser()
    if (folder / ADAPTER_CONFIG).is_file():
        info = inspect_model(folder)
        full = tuple(o for o in others if (Path(o).expanduser() / "config.json").is_file())
        base_dir = Path(find_adapter_base(info, adapter_base, full)).expanduser()
        if not (base_dir / "config.json").is_file():
            raise UserError(f"the adapter {argument} was trained on {info.adapter_base}, which is not a model folder "
                            "here; pass --base PATH where that base model is now")
        adapter_hash = file_sha256(folder / ADAPTER_WEIGHTS)
        return ModelRef(model_id=f"adapter-{adapter_hash[:16]}", kind="adapter", path=str(folder.resolve()),
                        base_path=str(base_dir.resolve()), adapter_hash=adapter_hash,
                        base_hash=weights_fingerprint(base_dir))
    if (folder / "config.json").is_file():
        weights_hash = weights_fingerprint(folder)
        return ModelRef(model_id=f"{full_kind}-{weights_hash[:16]}", kind=full_kind, path=str(folder.resolve()),
                        base_hash=weights_hash)
    if folder.exists():
        raise UserError(f"{argument}: neither a LoRA adapter folder (adapter_config.json) nor a model folder "
                        "(config.json)")
    raise UserError(f"{argument}: not a model folder (no config.json); pass a local model saved with "
                    "save_pretrained or a LoRA adapter folder")


def weights_hash(ref: ModelRef) -> str:
    """The hash that names a model's own weights: the adapter file's, or the model folder's fingerprint."""
    return ref.adapter_hash if ref.kind == "adapter" else (ref.base_hash or ref.model_id)


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
