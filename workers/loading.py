"""Loading the task types a worker serves: opsgraph's own, then every module named in the
`opsgraph.tasks` entry-point group of an installed distribution, then those given with
`--app`. A module that fails to import stops the worker at start, naming it: a worker never
runs half its types."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from opsgraph import definitions
from opsgraph.definitions import TaskType
from workers.handlers import register_builtin

ENTRY_POINT_GROUP = "opsgraph.tasks"
# opsgraph's own import names: a user's package of the same name can never be imported
OWN_PACKAGES = frozenset({"app", "workers", "opsgraph"})


class LoadError(SystemExit):
    """The worker cannot start: the message names the module and why."""

    def __init__(self, message: str) -> None:
        super().__init__(f"opsgraph worker: {message}")


def load(apps: Sequence[str] = (), *, app_dir: str | None = None) -> list[TaskType]:
    """Import the task modules; return the users' task types now defined."""
    register_builtin()
    if app_dir is not None:
        folder = os.path.abspath(app_dir)
        if folder not in sys.path:
            sys.path.insert(0, folder)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _import(ep.module, f"entry point {ep.name!r} of {_dist(ep)}")
    for module in apps:
        _import(module, "--app")
    return [d for d in definitions.defined().values() if not d.builtin]


def _dist(ep: object) -> str:
    dist = getattr(ep, "dist", None)
    return f"distribution {dist.name!r}" if dist is not None else "an installed distribution"


def _import(module: str, given_by: str) -> None:
    top = module.split(".")[0]
    if top in OWN_PACKAGES:
        raise LoadError(
            f"task module {module!r} ({given_by}): {top!r} is the name of opsgraph's own "
            "package, so a package of yours with that name can never be imported; rename it"
        )
    try:
        importlib.import_module(module)
    except definitions.DefinitionError as exc:
        raise LoadError(f"task module {module!r} ({given_by}): {exc}") from exc
    except BaseException as exc:
        raise LoadError(
            f"task module {module!r} ({given_by}) failed to import: {type(exc).__name__}: {exc}"
        ) from exc
