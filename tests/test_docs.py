"""The documentation: README stays a short front page whose links lead somewhere, and the site in
docs/ builds with `mkdocs build --strict` (broken links, missing pages, pages left out of the
navigation and unknown generated tables all fail), loading nothing from another origin."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# [text](target) and ![alt](target), the target up to a space or the closing parenthesis
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _relative_links(text: str) -> list[str]:
    """Link targets that point into the repository (no scheme, no bare anchor)."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links in code are not links
    return [
        t
        for t in LINK.findall(text)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I) and not t.startswith("#")
    ]


def test_readme_is_a_short_front_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200, "README.md is the front page; the rest goes to docs/"
    # the two set-up commands, verbatim (CI greps for the second)
    assert "pip install -e '.[embedded]' && opsgraph dev" in text
    assert "pip install -e '.[test]' && pytest" in text
    assert "python -m tests.mutations.run" in text


def test_every_readme_link_leads_to_a_file() -> None:
    links = _relative_links(README.read_text())
    assert any(link.startswith("docs/") for link in links)
    missing = [
        link
        for link in links
        if not (ROOT / link.split("#", 1)[0]).is_file()  # a page's anchor is the site's business
    ]
    assert not missing, f"README links to files that do not exist: {missing}"


class _Loads(HTMLParser):
    """What a page makes the browser fetch: scripts, stylesheets, icons, images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio") and a.get("src"):
            self.urls.append(a["src"] or "")
        if tag == "link" and a.get("href") and (a.get("rel") or "") != "canonical":
            self.urls.append(a["href"] or "")


def test_the_site_builds_strictly_from_this_origin_only(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict"]
    build = subprocess.run(
        [*command, "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stdout + build.stderr

    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 15
    foreign: list[str] = []
    for page in pages:
        html = page.read_text()
        assert "<!-- generated:" not in html, f"{page}: a generated table was not made"
        loads = _Loads()
        loads.feed(html)
        foreign += [f"{page.relative_to(site)}: {u}" for u in loads.urls if "//" in u]
    assert not foreign, "the site loads from another origin:\n" + "\n".join(foreign)

    # the generated tables are there, made from the code
    configuration = (site / "configuration" / "index.html").read_text()
    assert "OPSGRAPH_DATABASE_URL" in configuration
    assert "OPSGRAPH_CIRCUIT_BREAKER_SUCCESS_THRESHOLD" in configuration
    auth = (site / "auth" / "index.html").read_text()
    assert "tenant_admin" in auth and "/api/dlq/stats" in auth


def _tables() -> ModuleType:
    path = ROOT / "scripts" / "docs_tables.py"
    spec = importlib.util.spec_from_file_location("opsgraph_docs_tables", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_tables_follow_the_code() -> None:
    from app.auth.principals import ROLE_PERMISSIONS
    from app.config import Settings
    from tests.mutations.catalog import MUTATIONS

    tables = _tables()
    configuration = tables.table("configuration")
    for name in Settings.model_fields:
        assert f"`OPSGRAPH_{name.upper()}`" in configuration
    roles = tables.table("roles")
    for role in ROLE_PERMISSIONS:
        assert f"`{role}`" in roles
    catalog = tables.table("mutations")
    for mutation in MUTATIONS:
        assert f"`{mutation.file}`" in catalog
    assert f"{len(MUTATIONS)} mutations" in catalog
    with pytest.raises(KeyError, match="unknown generated table"):
        tables.render("<!-- generated: no-such-table -->")
