"""Bounds both doors hold a value to, each one named number: REST's parameters and bodies (so
the OpenAPI document states them), GraphQL's checks and the services' read them here. Where a
seed document states a bound, the number is the seed's."""

from __future__ import annotations

# a task's or a workflow's priority: higher runs first (seed 001's rule)
PRIORITY_MIN = 0
PRIORITY_MAX = 100
# retries after the first attempt, of a task or of a workflow step
MAX_RETRIES_MAX = 20
# seed 001's `page_size`, and the default of GraphQL's page cap (settings.page_size_max)
PAGE_SIZE_MAX = 100
# seed 002's lists: "Max results (1-1000)" (enrichment, batches, jobs), "Maximum jobs to
# return (max 1000)" (a dead letter queue); alerts and job logs page the same
LIMIT_MAX = 1000
# seed 002's prompt history: "Max versions per model (1-100)"
HISTORY_LIMIT_MAX = 100
# seed 002's audit reports: "Number of days to include (1-90)"
AUDIT_DAYS_MAX = 90
# seed 000's DELETE /stats: `older_than_hours` "Min: 0, Max: 8760"
CLEAR_STATS_HOURS_MAX = 8760
# one read of a webhook subscription's delivery log
DELIVERIES_LIMIT_MAX = 500


def check_within(
    value: float, low: float, high: float, *, field: str, name: str | None = None
) -> None:
    """Refuse `value` outside [low, high], naming the field (the services' one bounds check)."""
    if not low <= value <= high:
        from app.kernel.errors import InvalidInput

        raise InvalidInput(f"{name or field} must be between {low} and {high}", field=field)
