"""The layers are enforced, not described: import-linter's contracts (pyproject.toml,
[tool.importlinter]) hold for the code, and each kind of stray import breaks one of them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the packages under `root`, with `root`'s pyproject.toml."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_hold() -> None:
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


STRAYS = [
    # (module, the import added to it, the contract it breaks)
    pytest.param(
        "app/kernel/timing.py",
        "from app.services.tasks import commands",
        "Dependencies point one way",
        id="the kernel imports a service",
    ),
    pytest.param(
        "app/services/tasks/attempt_writes.py",
        "from app.services.pipeline.stages import STAGES",
        "The task core names no domain built on it",
        id="the core names a domain",
    ),
    pytest.param(
        "app/services/pipeline/stages.py",
        "from app.services.audit import records",
        "Domains meet only through the core",
        id="a domain imports another",
    ),
    pytest.param(
        "app/edge/uow.py",
        "from app.gql import schema",
        "Dependencies point one way",
        id="the edge imports a door",
    ),
    pytest.param(
        "app/rest/deps.py",
        "from app.gql import permissions",
        "Dependencies point one way",
        id="one door imports the other",
    ),
]


@pytest.mark.parametrize(("module", "stray", "contract"), STRAYS)
def test_a_stray_import_breaks_a_contract(
    tmp_path: Path, module: str, stray: str, contract: str
) -> None:
    # given a copy of the code and its contracts
    for package in ("app", "workers", "opsgraph"):
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=lambda folder, names: [
                n for n in names if not n.endswith(".py") and not (Path(folder) / n).is_dir()
            ],
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    # when one module gains the stray import
    path = tmp_path / module
    path.write_text(path.read_text() + f"\n{stray}  # stray\n")
    # then the contract that forbids it is broken, naming the import
    run = lint_imports(tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    broken = run.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, run.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    assert importer in broken, run.stdout
