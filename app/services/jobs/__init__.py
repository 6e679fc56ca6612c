"""Background jobs (seed 002): tasks of background types (exports, cleanup) in the one task
lifecycle, with seed 002's job words at the edge."""
