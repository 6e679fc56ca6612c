"""Small pure pieces whose rules users rely on: backoff, pricing, topological order."""

from __future__ import annotations

import logging
import random

import pytest

from app.kernel.errors import InvalidInput
from app.services.llm.pricing import cost_usd
from app.services.tasks.backoff import BackoffPolicy
from app.services.workflows.definitions import StepSpec, topological_order


def test_backoff_follows_seed_002_defaults() -> None:
    policy = BackoffPolicy()  # 1 s base, x2, 30 s ceiling, 0-25 % jitter
    rng = random.Random(7)
    for retry, base in ((1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (12, 30.0)):
        for _ in range(50):
            delay = policy.delay(retry, rng=rng)
            assert base <= delay <= base * 1.25, (retry, delay)


def test_cost_uses_the_price_table_and_warns_once_for_unknown_models(
    caplog: pytest.LogCaptureFixture,
) -> None:
    prices = {"m": {"input": 0.5, "output": 1.5}}
    assert cost_usd(prices, "m", 2000, 1000) == pytest.approx(2.5)
    assert cost_usd(prices, None, 10, 10) == 0.0
    with caplog.at_level(logging.WARNING):
        assert cost_usd(prices, "mystery-model", 10, 10) == 0.0
        assert cost_usd(prices, "mystery-model", 10, 10) == 0.0
    assert sum("mystery-model" in r.message for r in caplog.records) == 1


def test_topological_order_breaks_ties_by_declaration() -> None:
    steps = [
        StepSpec("d", "echo", dependencies=["b", "c"]),
        StepSpec("c", "echo", dependencies=["a"]),
        StepSpec("b", "echo", dependencies=["a"]),
        StepSpec("a", "echo"),
        StepSpec("e", "echo"),
    ]
    # at each point the earliest-declared step whose dependencies are placed comes next
    assert topological_order(steps) == ["a", "c", "b", "d", "e"]
    with pytest.raises(InvalidInput) as cycle:
        topological_order(
            [StepSpec("x", "echo", dependencies=["y"]), StepSpec("y", "echo", dependencies=["x"])]
        )
    assert "x -> y -> x" in cycle.value.message
