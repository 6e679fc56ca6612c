"""Seed 002's camera pipeline over REST: enrichment (6 endpoints, enrichment.py) and batches
(5, batches.py)."""

from app.rest.pipeline import batches, enrichment

routers = [enrichment.router, batches.router]
