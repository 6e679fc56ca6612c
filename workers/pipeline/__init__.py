"""The camera pipeline's worker side: the folder watcher, the batch timer and the stage
handlers (the model services they call, the detector and the enricher, are workers/models.py,
which the audit's judge shares)."""
