"""The mutation catalog stays applicable: every mutation names a line that occurs exactly once
in its file and tests that exist (the run itself is `python -m tests.mutations.run`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutations.catalog import MUTATIONS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_each_mutation_applies_to_one_line_and_names_real_tests(mutation: object) -> None:
    from tests.mutations.catalog import Mutation

    assert isinstance(mutation, Mutation)
    text = (ROOT / mutation.file).read_text()
    assert text.count(mutation.old) == 1, f"{mutation.name}: not exactly one {mutation.old!r}"
    assert mutation.old != mutation.new
    for test in mutation.tests:
        file, _, name = test.partition("::")
        source = (ROOT / file).read_text()
        assert not name or f"def {name}(" in source, f"{mutation.name}: no test {test}"


def test_the_catalog_is_broad() -> None:
    assert len(MUTATIONS) >= 20
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS)
