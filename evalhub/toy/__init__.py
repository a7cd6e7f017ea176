"""The offline toy world: a tiny Llama and tokenizer built from a seed, with its data sets."""

from __future__ import annotations

from pathlib import Path

from evalhub.toy.build import _content_key, _holds_world, build_toy_world, default_cache_dir, world_folder_name
from evalhub.toy.families import DEFAULT_FAMILY, family

__all__ = ["build_toy_world", "cached_toy_world", "default_cache_dir"]


# Here rather than in build.py, whose source is part of every world's cache key.
def cached_toy_world(seed: int = 0, arch: str = DEFAULT_FAMILY) -> Path | None:
    """The cached toy world of family `arch` for `seed`, or None when it is yet to be built."""
    dest = default_cache_dir() / world_folder_name(seed, arch)
    return dest if _holds_world(dest, _content_key(seed, family(arch))) else None
