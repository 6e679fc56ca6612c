"""Seed 004's AI Monitoring API (/api/v1/monitoring): agents, alerts, logs, metrics, the
dashboard, system health, and webhook subscriptions (beyond the seed)."""

from app.rest.ai_monitoring import (
    agents,
    alerts,
    controls,
    heartbeat,
    logs,
    metrics,
    overview,
    webhooks,
)

routers = [
    heartbeat.router,
    agents.router,
    controls.router,
    alerts.router,
    logs.router,
    metrics.router,
    overview.router,
    webhooks.router,
]
