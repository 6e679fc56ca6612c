"""Seed 004 beyond the agents: alert rules and alerts, logs, metrics, the dashboard, system
health, and webhook subscriptions to monitoring events."""
