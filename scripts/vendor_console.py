"""Rebuild app/console/static/vendor/ from pinned npm packages: the only third-party code the
console and GraphiQL load, shipped inside the Python package so nothing is fetched from a CDN.

    python scripts/vendor_console.py          # fetch, verify, extract, write MANIFEST.json
    python scripts/vendor_console.py --check  # the committed files still match the manifest

Each package is fetched with `npm pack` (the npm registry), its tarball checked against the
pinned sha512 integrity before anything is extracted. No bundler runs: the packages' own
browser builds (UMD/IIFE) are copied as published. tests/test_console_assets.py runs --check."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "app" / "console" / "static" / "vendor"
MANIFEST = VENDOR / "MANIFEST.json"

# package, version, npm's sha512 integrity, {path in the package: file name under vendor/}
PACKAGES: list[tuple[str, str, str, dict[str, str]]] = [
    (
        "react",
        "18.2.0",
        "sha512-/3IjMdb2L9QbBdWiW5e3P2/npwMBaU9mHCSCUzNln0ZCYbcfTsGbTJrU/kGemdH2IWmB2ioZ+zkxtmq6g09fGQ==",
        {"umd/react.production.min.js": "react.production.min.js", "LICENSE": "react.LICENSE"},
    ),
    (
        "react-dom",
        "18.2.0",
        "sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==",
        {
            "umd/react-dom.production.min.js": "react-dom.production.min.js",
            "LICENSE": "react-dom.LICENSE",
        },
    ),
    (
        "graphiql",
        "3.8.3",
        "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
        {
            "graphiql.min.js": "graphiql.min.js",
            "graphiql.min.css": "graphiql.min.css",
            "LICENSE": "graphiql.LICENSE",
        },
    ),
    (
        "uplot",
        "1.6.32",
        "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",
        {
            "dist/uPlot.iife.min.js": "uPlot.iife.min.js",
            "dist/uPlot.min.css": "uPlot.min.css",
            "LICENSE": "uplot.LICENSE",
        },
    ),
    (
        "@dagrejs/dagre",
        "1.1.4",
        "sha512-QUTc54Cg/wvmlEUxB+uvoPVKFazM1H18kVHBQNmK2NbrDR5ihOCR6CXLnDSZzMcSQKJtabPUWridBOlJM3WkDg==",
        {"dist/dagre.min.js": "dagre.min.js", "LICENSE": "dagre.LICENSE"},
    ),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rebuild() -> None:
    VENDOR.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, version, integrity, files in PACKAGES:
            out = subprocess.run(
                ["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", tmp],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            tarball = Path(tmp) / out.splitlines()[-1]
            digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
            if f"sha512-{digest}" != integrity:
                raise SystemExit(f"{name}@{version}: tarball does not match its pinned integrity")
            with tarfile.open(tarball) as tar:
                for inside, target in files.items():
                    member = tar.extractfile(f"package/{inside}")
                    if member is None:
                        raise SystemExit(f"{name}@{version} has no {inside}")
                    (VENDOR / target).write_bytes(member.read())
                    manifest[target] = {
                        "package": f"{name}@{version}",
                        "path": inside,
                        "sha256": sha256(VENDOR / target),
                    }
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"vendored {len(manifest)} files into {VENDOR.relative_to(ROOT)}")


def check() -> list[str]:
    """What differs between the committed files and the manifest (empty: up to date)."""
    manifest = json.loads(MANIFEST.read_text())
    pinned = {f"{n}@{v}": files for n, v, _, files in PACKAGES}
    problems = []
    expected = {target for files in pinned.values() for target in files.values()}
    if set(manifest) != expected:
        problems.append(f"manifest lists {sorted(manifest)}, the pins say {sorted(expected)}")
    for target, entry in manifest.items():
        path = VENDOR / target
        if entry["package"] not in pinned:
            problems.append(f"{target}: {entry['package']} is not pinned here")
        if not path.exists():
            problems.append(f"{target}: missing")
        elif sha256(path) != entry["sha256"]:
            problems.append(f"{target}: changed since it was vendored")
    on_disk = {p.name for p in VENDOR.iterdir() if p.name != MANIFEST.name}
    problems += [f"{extra}: not in the manifest" for extra in sorted(on_disk - set(manifest))]
    return problems


if __name__ == "__main__":
    if "--check" in sys.argv:
        found = check()
        print("\n".join(found) or "vendored files match the manifest")
        sys.exit(1 if found else 0)
    rebuild()
