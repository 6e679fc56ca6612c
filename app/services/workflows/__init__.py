"""Workflows: DAGs of steps (definitions), reading them (queries), and the engine that reacts
to its steps' task changes inside the transaction that makes them (registered with the task
core's reactions) and takes operators' actions; what a change does to a workflow is
scheduling's."""
