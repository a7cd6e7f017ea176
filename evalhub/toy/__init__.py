"""The offline toy world: a tiny Llama and tokenizer built from a seed, with its data sets."""

from evalhub.toy.build import build_toy_world, default_cache_dir

__all__ = ["build_toy_world", "default_cache_dir"]
