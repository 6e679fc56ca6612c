"""Domain logic, one package per domain over the task core (tasks/). Services take the session
as a keyword argument and flush; the edge (resolver, REST route, worker job) owns the
transaction."""
