"""opsgraph: the control plane for AI workloads (API side and shared core)."""
