"""Domain logic, one module per domain. Services take the session as a keyword argument and
flush; the edge (resolver, REST route, worker job) owns the transaction."""
