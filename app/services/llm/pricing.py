"""Cost of a call: tokens times the per-model price table from the settings."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
_warned: set[str] = set()


def cost_usd(
    prices: dict[str, dict[str, float]], model: str | None, input_tokens: int, output_tokens: int
) -> float:
    if not model:
        return 0.0
    price = prices.get(model)
    if price is None:
        if model not in _warned and len(_warned) < 1000:
            _warned.add(model)
            log.warning("no price for model %r; its cost counts as 0", model)
        return 0.0
    return round(
        input_tokens / 1000 * price.get("input", 0.0)
        + output_tokens / 1000 * price.get("output", 0.0),
        8,
    )
