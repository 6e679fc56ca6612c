"""AI agent monitoring (seed 004): agents report in by heartbeat and receive their desired
state; operators steer them with recorded controls."""
