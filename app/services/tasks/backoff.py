"""Retry delays: exponential backoff with jitter (seed 002's defaults live in the settings)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    base_delay: float = 1.0
    max_delay: float = 30.0
    exponential_base: float = 2.0
    jitter: float = 0.25

    def delay(self, retry_number: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry_number` (1 for the first retry)."""
        raw = self.base_delay * self.exponential_base ** max(retry_number - 1, 0)
        capped = min(raw, self.max_delay)
        spread = (rng or random).uniform(0.0, self.jitter)
        return capped * (1.0 + spread)
