"""Seed 001's GENERATION tasks as a user's own opsgraph task types (importing this module
defines them)."""

from generation_tasks import tasks

__all__ = ["tasks"]
