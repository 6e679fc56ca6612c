"""Workflows: DAGs of steps (definitions), reading them (queries), and the engine that reacts
to its steps' task changes inside the transaction that makes them (registered with the task
core's reactions)."""
