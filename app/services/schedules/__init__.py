"""Schedules: cron expressions in a time zone that start a task or a workflow at every tick,
each tick at most once (a fire is a row unique on schedule and time)."""
