"""REST shims: one module per seed document's area; each parses, calls a service, shapes."""
