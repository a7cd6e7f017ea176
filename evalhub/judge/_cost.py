"""What judge calls cost, and the `--max-cost` budget that stops a run before it is passed.

Prices are USD per million tokens (input, output), matched by the longest known prefix of the model name, so
dated snapshots such as gpt-4o-2024-08-06 or claude-sonnet-4-5-20250929 find their family. They are list
prices at the time of writing and only an estimate: pass `prices` to override or to price a model not listed.
A judge run in-process (vllm:) costs nothing here: its price is zero.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from evalhub.errors import UserError

PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "claude-opus-4": (15.00, 75.00),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4-5": (5.00, 25.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
}


def price_for(model: str, overrides: Mapping[str, Sequence[float]] | None = None) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for `model`, overrides first; None when unknown."""
    for table in (overrides or {}, PRICES_PER_MILLION):
        matches = [name for name in table if model == name or model.startswith(name + "-")]
        if matches:
            input_price, output_price = table[max(matches, key=len)]
            return float(input_price), float(output_price)
    return None


def priced(model: str, prices: Mapping[str, Sequence[float]] | None, max_cost: float | None) -> tuple[float, float] | None:
    """The price of `model`, or UserError when --max-cost is asked for a model without one."""
    price = price_for(model, prices)
    if max_cost is not None and price is None:
        raise UserError(f"--max-cost needs a price for judge model {model!r}: pass prices "
                        f"{{'{model}': [input, output]}} in USD per million tokens, or drop --max-cost")
    return price


def call_cost(price: tuple[float, float] | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6


class Budget:
    """Holds back a worst-case estimate for every call in flight, so concurrent calls cannot pass `max_cost`
    together. `reserve` refuses a call that could pass it; `settle` swaps the estimate for the billed cost."""

    def __init__(self, max_cost: float | None, price: tuple[float, float] | None, max_completion_tokens: int):
        self.max_cost = max_cost
        self.price = price
        self.max_completion_tokens = max_completion_tokens
        self.spent = 0.0
        self.reserved = 0.0
        # Tokens per byte of prompt text: 0.5 bounds English and most scripts with room to spare; raised if a
        # reply ever shows more, so later estimates stay above what is billed.
        self.tokens_per_byte = 0.5

    def estimate(self, prompt_bytes: int) -> float:
        prompt_tokens = math.ceil(prompt_bytes * self.tokens_per_byte) + 32
        return call_cost(self.price, prompt_tokens, self.max_completion_tokens) or 0.0

    def reserve(self, prompt_bytes: int) -> float | None:
        """The amount held for this call, or None when the call could pass the budget."""
        estimate = self.estimate(prompt_bytes)
        if self.max_cost is not None and self.spent + self.reserved + estimate > self.max_cost:
            return None
        self.reserved += estimate
        return estimate

    def settle(self, held: float, prompt_bytes: int, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Release the hold, record what the call cost; returns that cost (None when the price is unknown)."""
        self.reserved -= held
        if prompt_bytes:
            self.tokens_per_byte = max(self.tokens_per_byte, 1.1 * prompt_tokens / prompt_bytes)
        cost = call_cost(self.price, prompt_tokens, completion_tokens)
        self.spent += cost or 0.0
        return cost

    def release(self, held: float) -> None:
        """Release the hold of a call that failed without being billed."""
        self.reserved -= held
