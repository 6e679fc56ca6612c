"""The console's files: the vendored third-party code matches its pinned manifest (a stale or
hand-edited bundle fails), every GraphQL document the console sends is valid against the
exported schema, nothing it loads names another origin, no script reads a credential from the
URL, and the first load stays small."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from pathlib import Path

import graphql

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "app" / "console" / "static"


def test_vendored_files_match_their_pinned_manifest() -> None:
    run = subprocess.run(
        [sys.executable, "scripts/vendor_console.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def console_documents() -> dict[str, str]:
    source = (STATIC / "console.js").read_text()
    fragments = dict(re.findall(r'var (\w+) = "([^"]*)";', source))
    found = {}
    for name, body in re.findall(r'(\w+): /\* graphql \*/ ((?:"[^"]*"|\w+|\s*\+\s*)+),', source):
        parts = re.findall(r'"([^"]*)"|(\b[A-Z_]+\b)', body)
        found[name] = "".join(text or fragments[var] for text, var in parts)
    return found


def test_every_console_document_is_valid_against_the_schema() -> None:
    schema = graphql.build_schema((ROOT / "graphql" / "schema.graphql").read_text())
    documents = console_documents()
    assert len(documents) >= 40
    problems = {}
    for name, text in documents.items():
        document = graphql.parse(text)
        (operation,) = document.definitions
        assert operation.name.value == name  # type: ignore[attr-defined]
        errors = graphql.validate(schema, document)
        if errors:
            problems[name] = [e.message for e in errors]
    assert problems == {}


def test_nothing_the_console_loads_names_another_origin() -> None:
    for name in ("console.html", "console.js", "console.css", "graphiql.html", "graphiql-boot.js"):
        # an SVG element's namespace is a name, not a request
        text = (STATIC / name).read_text().replace('"http://www.w3.org/2000/svg"', "")
        assert not re.search(r"https?://", text), name
        assert "//unpkg" not in text and "//cdn" not in text, name


def test_no_script_takes_a_credential_from_the_url() -> None:
    # a URL lands in the browser's history: the console's link carries a one-time code, which
    # console.js exchanges (POST /console/session); neither page reads a token from the URL
    for name in ("console.js", "graphiql-boot.js"):
        source = (STATIC / name).read_text()
        assert "token=" not in source, name
        assert not re.search(r"location\.(search|href)", source), name
    console = (STATIC / "console.js").read_text()
    assert "code=" in console and '"/console/session"' in console


def test_the_first_load_is_small() -> None:
    # what /console loads before any view: the page, its script and style, uPlot and dagre
    files = [
        "console.html",
        "console.js",
        "console.css",
        "vendor/uPlot.min.css",
        "vendor/uPlot.iife.min.js",
        "vendor/dagre.min.js",
    ]
    compressed = sum(len(gzip.compress((STATIC / f).read_bytes())) for f in files)
    assert compressed <= 300_000, compressed
