"""What every request (and every worker job) shares: the unit of work, the process's state,
submissions and waiting for them, input hygiene, body limits, response headers, and the
domains assembled into a process."""
