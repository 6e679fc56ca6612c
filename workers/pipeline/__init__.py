"""The camera pipeline's worker side: the folder watcher, the batch timer, the model services
(detector, enricher) and the stage handlers."""
