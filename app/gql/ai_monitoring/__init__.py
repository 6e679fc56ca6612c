"""Seed 004 in GraphQL: agents and their controls, alerts and rules, logs, metrics, the
dashboard, health, webhook subscriptions, log ingest, and the live alert, agent-status and log
feeds."""

from app.gql.ai_monitoring.agents import AgentMutations, AgentQueries
from app.gql.ai_monitoring.alerts import AlertMutations, AlertQueries
from app.gql.ai_monitoring.logs import LogMutations, LogSubscription
from app.gql.ai_monitoring.observe import ObserveQueries
from app.gql.ai_monitoring.subscriptions import MonitoringSubscription
from app.gql.ai_monitoring.webhooks import WebhookMutations, WebhookQueries

__all__ = [
    "AgentMutations",
    "AgentQueries",
    "AlertMutations",
    "AlertQueries",
    "LogMutations",
    "LogSubscription",
    "MonitoringSubscription",
    "ObserveQueries",
    "WebhookMutations",
    "WebhookQueries",
]
