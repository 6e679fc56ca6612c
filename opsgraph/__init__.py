"""opsgraph's task author API: define task types in your own package, run them on opsgraph's
workers. Everything here is public and stable; `app` and `workers` are opsgraph's internals.

    import opsgraph

    @opsgraph.task("images.resize", queue="media", input=Resize, retries=5, timeout=120)
    async def resize(ctx: opsgraph.TaskContext, args: Resize) -> dict: ...
"""

from opsgraph.context import LLM, TaskContext
from opsgraph.definitions import Concurrency, TaskType, task
from opsgraph.errors import FatalError, RetryableError

__all__ = [
    "LLM",
    "Concurrency",
    "FatalError",
    "RetryableError",
    "TaskContext",
    "TaskType",
    "task",
]
