"""The mutation catalog stays applicable: every mutation names a line that occurs exactly once
in its file and tests that exist (the run itself is `python -m tests.mutations.run`); the run
counts as kills only failures of a named test's own code, and copies what git sees."""

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


JUNIT = """<testsuites><testsuite>
<testcase file="tests/test_a.py" classname="tests.test_a" name="test_asserts">
  <properties><property name="mutation_verdict" value="assertion"/></properties>
  <failure message="AssertionError: assert 1 == 2">...</failure></testcase>
<testcase file="tests/test_a.py" classname="tests.test_a" name="test_meets_a_key_error">
  <properties><property name="mutation_verdict" value="exception: KeyError"/></properties>
  <failure message="KeyError: 'data'">...</failure></testcase>
<testcase file="tests/test_a.py" classname="tests.test_a" name="test_setup_breaks">
  <error message="failed on setup with &quot;RuntimeError: server exited&quot;">...</error>
</testcase>
<testcase file="tests/test_a.py" classname="tests.test_a" name="test_hangs">
  <properties><property name="mutation_verdict" value="timeout"/></properties>
  <failure message="Failed: Timeout (&gt;180.0s) from pytest-timeout.">...</failure></testcase>
<testcase file="tests/test_a.py" classname="tests.test_a" name="test_imports">
  <properties><property name="mutation_verdict" value="import: ModuleNotFoundError"/></properties>
  <failure message="ModuleNotFoundError: No module named 'x'">...</failure></testcase>
<testcase file="tests/test_a.py" classname="tests.test_a" name="test_passes[one]@group"/>
<testcase file="tests/test_b.py" classname="" name="tests.test_b">
  <error message="collection failure">ImportError while importing test module</error>
</testcase>
</testsuite></testsuites>"""


@pytest.mark.parametrize(
    ("test", "outcome"),
    [
        ("test_asserts", "killed"),
        ("test_meets_a_key_error", "killed (KeyError)"),
        ("test_setup_breaks", 'NOT KILLED (error: failed on setup with "RuntimeError: server'),
        ("test_hangs", "TIMEOUT (timeout)"),
        ("test_imports", "NOT KILLED (import: ModuleNotFoundError)"),
        ("test_passes", "SURVIVED"),
        ("test_missing", "NOT RUN (pytest exit 1)"),
    ],
)
def test_only_a_failure_of_a_named_tests_own_code_kills(
    tmp_path: Path, test: str, outcome: str
) -> None:
    from tests.mutations.catalog import Mutation
    from tests.mutations.run import Finished, judge, read_junit

    (tmp_path / "junit.xml").write_text(JUNIT)
    cases = [c for c in read_junit(tmp_path / "junit.xml") if "test_b" not in c.nodeid]
    mutation = Mutation("m", "app/x.py", "a", "b", (f"tests/test_a.py::{test}",))
    assert judge(mutation, Finished(1, cases, tmp_path / "log", 1.0)).startswith(outcome)


def test_a_collection_error_is_no_kill_and_a_timed_out_run_is_a_timeout(tmp_path: Path) -> None:
    from tests.mutations.catalog import Mutation
    from tests.mutations.run import Finished, judge, read_junit

    (tmp_path / "junit.xml").write_text(JUNIT)
    cases = read_junit(tmp_path / "junit.xml")
    in_b = Mutation("m", "app/x.py", "a", "b", ("tests/test_b.py::test_x",))
    assert judge(in_b, Finished(2, cases, tmp_path / "log", 1.0)).startswith(
        "NOT KILLED (collection error"
    )
    hung = Mutation("m", "app/x.py", "a", "b", ("tests/test_a.py::test_passes",))
    assert judge(hung, Finished(None, cases, tmp_path / "log", 1.0)).startswith("TIMEOUT")


def test_the_copy_holds_what_git_sees(tmp_path: Path) -> None:
    from tests.mutations.run import tree_files

    files = set(tree_files(ROOT))
    assert {"pyproject.toml", "tests/mutations/run.py", "app/__init__.py"} <= files
    assert not any(f.startswith((".git/", ".venv/")) or "__pycache__" in f for f in files)
