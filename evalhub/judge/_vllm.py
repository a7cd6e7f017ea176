"""`vllm:PATH`: an open judge model run in-process by vLLM (`vllm.LLM`), no server and no key.

Every reply is constrained to the verdict's JSON schema (vLLM's structured outputs), so every reply parses,
however weak the judge. The schema is _protocol.RESPONSE_FORMAT's with two bounds that make a reply always
fit in `max_completion_tokens`: no whitespace between JSON tokens, and a reason of printable ASCII (no
quote or backslash, hence no escapes) at most `max_completion_tokens - JSON_TOKENS` characters long. Each
such character costs at most one token, so the closing brace always comes before the token limit; a
strong judge stops much sooner, at the end of its sentence.

Calls are batched: the calls of one turn (all first asks, then all re-asks) reach `complete` together and
go to vLLM in one `llm.chat`, which applies the model's chat template. The engine starts at the first call
the cache cannot answer (a fully cached re-run never loads it) and is shut down when the run ends, through
the same release path as generation engines (models.loaded, models.vllm_engine.shut_down).
`JudgeOptions.vllm_args` adds or overrides vllm.LLM arguments (tensor_parallel_size, max_model_len, ...).
"""

from __future__ import annotations

import asyncio
import importlib.util
from contextlib import ExitStack
from pathlib import Path

from evalhub.errors import UserError
from evalhub.judge._protocol import RESPONSE_FORMAT
from evalhub.judge._provider import REJECTED, Completion, Fault

# Tokens the JSON around the reason can take: {"verdict":"tie","reason":""} is 29 characters, each at least
# one token, and the end-of-sequence token.
JSON_TOKENS = 32
MIN_REASON_CHARS = 16


class VLLMProvider:
    """One open judge model in this process."""

    batched = True
    structured = True
    secret = ""

    def __init__(self, judge: str, path: str, options):
        from evalhub.models import inspect_model

        if importlib.util.find_spec("vllm") is None:
            raise UserError("a vllm: judge needs vLLM: pip install -e '.[cpu]' (CPU) or '.[gpu]' (CUDA), or serve "
                            "the judge model and use --judge openai:MODEL --judge-base-url URL")
        info = inspect_model(path)
        if info.kind == "adapter":
            raise UserError(f"{path}: a LoRA adapter cannot be a vllm: judge; merge it first (evalhub merge BASE "
                            f"ADAPTER OUT) and pass the merged folder")
        if options.max_completion_tokens < JSON_TOKENS + MIN_REASON_CHARS:
            raise UserError(f"a vllm: judge needs max_completion_tokens of at least {JSON_TOKENS + MIN_REASON_CHARS} "
                            f"for its JSON verdict; raise it")
        local = Path(info.path).expanduser()
        self.judge, self.model = judge, path
        self.endpoint = str(local.resolve()) if local.exists() else info.path  # the cache keys on the model itself
        self.where = self.endpoint
        self.price = (0.0, 0.0)  # computed here: nothing is billed
        self.max_tokens = options.max_completion_tokens
        self.sampling = {"temperature": 0.0, "max_tokens": self.max_tokens, "seed": options.seed,
                         "schema": "ascii-reason"}  # the bounded schema below: part of what makes a reply
        self.response_format = RESPONSE_FORMAT  # the protocol's schema (make_judge sets it; None: free text)
        self.requests = 0
        self.batches = 0  # llm.chat calls: one per turn of the run, however many calls it holds
        self._vllm_args = dict(options.vllm_args or {})
        self._pending: list[tuple[list[dict], asyncio.Future]] = []
        self._batcher: asyncio.Task | None = None
        self._engine = ExitStack()
        self._llm = None

    async def check(self) -> None:
        pass  # nothing to reach; starting the engine is the expensive part, left to the first call

    async def complete(self, messages: list[dict], structured: bool) -> Completion:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((messages, future))
        if self._batcher is None:
            self._batcher = asyncio.ensure_future(self._run_batch())
        return await future

    async def _run_batch(self) -> None:
        """Wait until every call that is about to ask has asked (one loop turn in which none joins), then
        send them all in one batch."""
        try:
            while True:
                waiting = len(self._pending)
                await asyncio.sleep(0)
                if len(self._pending) == waiting:
                    break
            batch, self._pending = self._pending, []
            try:
                replies = self._chat([messages for messages, _ in batch])
            except Exception as error:  # the engine failed: every call of the batch fails with it
                replies = [error] * len(batch)
            for (_, future), reply in zip(batch, replies, strict=True):
                if future.done():
                    continue
                if isinstance(reply, BaseException):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        finally:
            self._batcher = None

    def _chat(self, conversations: list[list[dict]]) -> list[Completion | BaseException]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        llm = self._start()
        tokenizer = llm.get_tokenizer()
        context = llm.llm_engine.model_config.max_model_len
        results: list[Completion | BaseException] = []
        fitting = []
        for conversation in conversations:
            text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
            length = len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
            if length + self.max_tokens > context:
                results.append(_TooLong(f"the judge prompt is {length} tokens and its reply may take {self.max_tokens}: "
                                        f"more than the judge model's context of {context}; use a judge with a longer "
                                        f"context (or vllm_args max_model_len), or a smaller max_completion_tokens"))
            else:
                results.append(None)  # filled below
                fitting.append(conversation)
        if fitting:
            constrained = {} if self.response_format is None else {
                "structured_outputs": StructuredOutputsParams(json=verdict_schema(self.max_tokens, self.response_format))}
            params = SamplingParams(temperature=0.0, max_tokens=self.max_tokens, seed=self.sampling["seed"], **constrained)
            outputs = iter(llm.chat(fitting, params, use_tqdm=False))
            self.requests += len(fitting)
            self.batches += 1
            for index, result in enumerate(results):
                if result is None:
                    out = next(outputs)
                    results[index] = Completion(out.outputs[0].text, len(out.prompt_token_ids or ()),
                                                len(out.outputs[0].token_ids))
        return results

    def _start(self):
        if self._llm is None:
            from evalhub.models import LoadOptions, engine_args, loaded
            from evalhub.models.vllm_engine import shut_down, start_engine

            args = {**engine_args(self.endpoint, LoadOptions(seed=self.sampling["seed"])),
                    # Engine-wide in vLLM 0.32 (a request's own flag is not read) and only for xgrammar: JSON without
                    # whitespace between tokens, so a weak judge cannot spend its tokens on blank lines.
                    "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
                    **self._vllm_args}
            key = ("vllm-judge", tuple(sorted((name, str(value)) for name, value in args.items())))
            self._llm = self._engine.enter_context(loaded(key, lambda: start_engine(args), shut_down))
        return self._llm

    def classify(self, error: BaseException) -> Fault | None:
        if isinstance(error, _TooLong):
            return Fault(REJECTED, str(error))
        return None  # an engine error is a bug or a broken install: it propagates

    async def aclose(self) -> None:
        self._llm = None
        self._engine.close()


class _TooLong(Exception):
    pass


def verdict_schema(max_tokens: int, response_format: dict | None = None) -> dict:
    """The protocol's verdict schema (RESPONSE_FORMAT's by default) with a reason that always fits: printable
    ASCII without quote or backslash (one token at least per character, no escapes), at most
    max_tokens - JSON_TOKENS characters."""
    schema = (response_format or RESPONSE_FORMAT)["json_schema"]["schema"]
    reason = {"type": "string", "pattern": f"^[ !#-\\[\\]-~]{{0,{max_tokens - JSON_TOKENS}}}$"}
    return {**schema, "properties": {**schema["properties"], "reason": reason}}
