"""Tags name deployed models: `evalhub tag set production adapters/v3` records the model's path and its
weights' hash in the store, and `evalhub compare production adapters/v4` compares against it. A tag whose
weights changed since tagging is refused: a gate must compare against what was approved, not against
whatever now sits at that path.
"""

from __future__ import annotations

import re
from pathlib import Path

from evalhub.errors import UserError

TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    if not TAG_NAME.match(name):
        raise UserError(f"tag name {name!r}: use a letter, then letters, digits, '.', '_' or '-' (at most 64), "
                        "e.g. production")
    return name


def set_tag(name: str, model: str, db, adapter_base: str | None = None) -> dict:
    """Point the tag `name` at `model` (a model or adapter folder), recording its weights' hash."""
    from evalhub.models import describe_model, weights_hash
    from evalhub.store._tags import read_tag, save_tag

    check_name(name)
    if not Path(model).expanduser().exists() and read_tag(model, db) is not None:
        model = resolve_model(model, db)[0]  # `tag set staging production`: the model production names
    ref = describe_model(model, adapter_base)
    save_tag(name, ref, weights_hash(ref), db)
    return {"name": name, "path": ref.path, "kind": ref.kind, "weights_hash": weights_hash(ref)}


def remove_tag(name: str, db) -> None:
    from evalhub.store._tags import delete_tag

    check_name(name)
    if not delete_tag(name, db):
        raise UserError(f"no tag {name!r} in the store; `evalhub tag list` lists them")


def resolve_model(argument: str, db) -> tuple[str, str | None]:
    """(the model's path, an adapter's base path or None) for a tag name; an existing path is not a tag."""
    from evalhub.models import describe_model, weights_hash
    from evalhub.store._tags import read_tag

    tag = read_tag(argument, db) if TAG_NAME.match(argument) and not Path(argument).exists() else None
    if tag is None:
        return argument, None
    redo = f"re-tag it once the new weights are approved: `evalhub tag set {argument} PATH`"
    if not Path(tag["path"]).exists():
        raise UserError(f"tag {argument!r} names {tag['path']}, which is gone; {redo}")
    ref = describe_model(tag["path"], tag["base_path"] if tag["kind"] == "adapter" else None)
    if weights_hash(ref) != tag["weights_hash"]:
        raise UserError(f"tag {argument!r}: the weights at {tag['path']} changed since they were tagged (hash "
                        f"{tag['weights_hash'][:12]}, now {weights_hash(ref)[:12]}); {redo}")
    return tag["path"], tag["base_path"] if tag["kind"] == "adapter" else None


def resolve_request(request, db, fields: tuple[str, ...] = ("base", "tuned")):
    """The request with tag names replaced by the tagged models' paths (their weights checked), and which
    field named which tag. An adapter's base recorded with its tag serves as --base unless one is given."""
    if request.backend == "openai":
        return request, {}
    update, tags = {}, {}
    for field in fields:
        path, base = resolve_model(getattr(request, field), db)
        if path != getattr(request, field):
            update[field], tags[field] = path, getattr(request, field)
            if base and not request.adapter_base and not update.get("adapter_base"):
                from evalhub.models import inspect_model
                from evalhub.models.kinds import same_base

                recorded = inspect_model(path).adapter_base
                if not (recorded and same_base(recorded, base)):
                    update["adapter_base"] = base
    return (request.model_copy(update=update) if update else request), tags
