"""Adapters to PostgreSQL, Redis and arq: events, dispatch of after-commit effects, group
commit, the clock, outages, what a column can hold, and embedded stores for dev and tests."""
