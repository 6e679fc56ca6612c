"""The task core: one lifecycle for everything that runs. Submitting (specs, submissions),
commands (get, cancel, retry, an attempt's start and end), the worker's raw-asyncpg attempt
writes and the statements both paths share, reading (queries, counters), the DLQ, backoff,
and the reactions other domains register with (reactions). The core names no domain built on
it."""
