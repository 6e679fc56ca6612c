"""Pure building blocks every layer may use: domain errors, paging, effects, timing, export
files. Nothing here knows PostgreSQL, Redis, arq or a domain."""
