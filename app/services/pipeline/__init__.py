"""The camera AI pipeline (seed 002): images become detection tasks, detections enrichment
tasks, enriched detections join per-camera batches, closed batches analysis tasks, analyses
security events. Every stage is a task of the one lifecycle; these modules hold the records
the stages leave and the reactions that chain them."""
