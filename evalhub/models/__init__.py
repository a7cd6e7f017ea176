"""The model layer: what a model argument is, and how its weights are loaded and released.

    kinds         inspect_model: adapter folder (and its base), full model folder, hub id, served name
    plan          plan_models / plan_engines: which weights to load and which named models' passes run on
                  each (adapters of one base share one load)
    refs          describe_models / describe_named: the ModelRefs and weight hashes a stored run records
    options       LoadOptions: dtype, context, memory, parallelism, LoRA rank, 4-bit
    vllm_engine   engine_args (LoRA ranks, max_loras, memory share, dtype, CPU build), start and shutdown
    hf_loading    load_tokenizer (pad token), nf4_config (4-bit), load_causal_lm (with or without an adapter)
    session       loaded / keep_models_loaded / release_models: one model in memory at a time
    backend       resolve_backend: vllm, hf or openai

Generation, perplexity, forgetting (lm-eval's HFLM and vLLM models) and training all load through here.
Nothing heavy is imported until a model is loaded.
"""

from evalhub.models.backend import resolve_backend
from evalhub.models.hf_loading import context_length, load_causal_lm, load_tokenizer, nf4_config, use_adapter
from evalhub.models.kinds import ModelInfo, inspect_model, same_base
from evalhub.models.options import LoadOptions
from evalhub.models.plan import EnginePlan, Pass, adapter_base, plan_engines, plan_models
from evalhub.models.refs import describe_model, describe_models, describe_named, weights_hash
from evalhub.models.session import keep_models_loaded, loaded, release_models
from evalhub.models.vllm_engine import engine_args, is_cpu_build

__all__ = ["EnginePlan", "LoadOptions", "ModelInfo", "Pass", "adapter_base", "context_length", "describe_model",
           "describe_models", "describe_named", "engine_args", "plan_models", "weights_hash",
           "inspect_model", "is_cpu_build", "keep_models_loaded", "load_causal_lm", "load_tokenizer", "loaded",
           "nf4_config", "plan_engines", "use_adapter", "release_models", "resolve_backend", "same_base"]
