"""Domain logic, one package per domain over the task core (tasks/), and the way every domain
reads rows (rows.py: one by its key, keyset pages and counts, a filter's conditions). Services
take the session as a keyword argument and flush; the edge (resolver, REST route, worker job)
owns the transaction."""
