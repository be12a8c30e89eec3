#!/usr/bin/env python3
"""Vendor the GraphiQL browser assets into ``recoverly/static/graphiql/``.

The GraphiQL page (``recoverly/static/graphiql/index.html``) must work without
internet access, so every asset it loads is served by recoverly itself. This
script refreshes those assets from the npm registry:

* tarballs are fetched with ``npm pack <pkg>@<version>`` (so the configured npm
  registry / proxy / auth is used),
* each tarball is checked against the pinned npm ``integrity`` (sha512),
* only the minified browser builds are extracted, together with each
  package's licence (written as ``LICENSE.<package>``),
* ``VERSIONS.txt`` records ``package@version``, file name and sha256 of every
  vendored file (``tests/test_graphiql_assets.py`` checks it).

Standard library only. Usage::

    python3 scripts/refresh_graphiql.py [--dest DIR]

To upgrade, change the pins below (``npm view <pkg>@<version> dist.integrity``
gives the integrity string), rerun the script and commit the result.

graphql-ws is *not* vendored separately: the graphiql UMD bundle already
contains it (``GraphiQL.createFetcher({url, subscriptionUrl})`` opens the
websocket with its bundled graphql-ws client).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

# --------------------------------------------------------------------------
# Pinned versions.
# --------------------------------------------------------------------------
GRAPHIQL_VERSION = "3.9.0"  # last 3.x release; ships the UMD bundle graphiql.min.js/.css
REACT_VERSION = "18.3.1"  # graphiql 3.x supports React 16.8 - 18; 18.x ships UMD builds
REACT_DOM_VERSION = "18.3.1"

# npm "dist.integrity" of each pinned tarball (`npm view pkg@version dist.integrity`).
INTEGRITY = {
    f"graphiql@{GRAPHIQL_VERSION}": (
        "sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA=="
    ),
    f"react@{REACT_VERSION}": (
        "sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ=="
    ),
    f"react-dom@{REACT_DOM_VERSION}": (
        "sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw=="
    ),
}


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    # path inside the tarball -> file name in the destination directory
    files: dict[str, str]
    license_path: str = "package/LICENSE"

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


PACKAGES = (
    Package(
        "react",
        REACT_VERSION,
        {"package/umd/react.production.min.js": "react.production.min.js"},
    ),
    Package(
        "react-dom",
        REACT_DOM_VERSION,
        {"package/umd/react-dom.production.min.js": "react-dom.production.min.js"},
    ),
    Package(
        "graphiql",
        GRAPHIQL_VERSION,
        {
            "package/graphiql.min.js": "graphiql.min.js",
            "package/graphiql.min.css": "graphiql.min.css",
        },
    ),
)

VERSIONS_FILE = "VERSIONS.txt"
HEADER = "# Vendored GraphiQL assets, written by scripts/refresh_graphiql.py -- do not edit."
# Files in the destination that this script owns (anything else, e.g.
# index.html, is left alone). Used to remove assets of an older pin set.
MANAGED_GLOBS = ("*.min.js", "*.min.css", "LICENSE.*", VERSIONS_FILE)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO_ROOT / "recoverly" / "static" / "graphiql"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def npm_integrity(path: Path) -> str:
    h = hashlib.sha512()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha512-" + base64.b64encode(h.digest()).decode("ascii")


def npm_pack(spec: str, workdir: Path) -> Path:
    """Download ``spec`` with ``npm pack`` into ``workdir``; return the tarball."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("error: `npm` is not on PATH (needed to download from the npm registry)")
    before = set(workdir.glob("*.tgz"))
    proc = subprocess.run(
        [npm, "pack", spec, "--pack-destination", str(workdir), "--json", "--ignore-scripts"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"error: `npm pack {spec}` failed:\n{proc.stderr.strip()}")
    filename = None
    try:
        info = json.loads(proc.stdout)
        if isinstance(info, list) and info and "filename" in info[0]:
            filename = info[0]["filename"]
    except json.JSONDecodeError:
        pass
    if filename is not None and (workdir / filename).is_file():
        return workdir / filename
    new = sorted(set(workdir.glob("*.tgz")) - before)
    if len(new) != 1:
        raise SystemExit(f"error: could not find the tarball written by `npm pack {spec}`")
    return new[0]


def extract_member(tar: tarfile.TarFile, member_name: str, target: Path, spec: str) -> None:
    try:
        member = tar.getmember(member_name)
    except KeyError:
        raise SystemExit(f"error: {spec} tarball has no {member_name}") from None
    if not member.isfile():
        raise SystemExit(f"error: {member_name} in {spec} is not a regular file")
    src = tar.extractfile(member)
    assert src is not None
    tmp = target.with_name(target.name + ".tmp")
    with src, tmp.open("wb") as out:
        shutil.copyfileobj(src, out)
    tmp.replace(target)


def refresh(dest: Path) -> list[tuple[str, str, str]]:
    dest.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []  # (package@version, file, sha256)
    wanted: set[str] = {VERSIONS_FILE}
    with tempfile.TemporaryDirectory(prefix="refresh-graphiql-") as tmp:
        workdir = Path(tmp)
        for pkg in PACKAGES:
            print(f"fetching {pkg.spec} ...", file=sys.stderr)
            tarball = npm_pack(pkg.spec, workdir)
            expected = INTEGRITY.get(pkg.spec)
            actual = npm_integrity(tarball)
            if expected is None:
                raise SystemExit(
                    f"error: no pinned integrity for {pkg.spec}; add\n"
                    f'    "{pkg.spec}": "{actual}",\nto INTEGRITY after checking it with '
                    f"`npm view {pkg.spec} dist.integrity`"
                )
            if actual != expected:
                raise SystemExit(
                    f"error: integrity mismatch for {pkg.spec}:\n"
                    f"  expected {expected}\n  got      {actual}"
                )
            outputs = dict(pkg.files)
            outputs[pkg.license_path] = f"LICENSE.{pkg.name}"
            with tarfile.open(tarball, "r:gz") as tar:
                for member_name, out_name in outputs.items():
                    target = dest / out_name
                    extract_member(tar, member_name, target, pkg.spec)
                    wanted.add(out_name)
                    rows.append((pkg.spec, out_name, sha256_file(target)))

    # Drop assets left over from a previous pin set (never touches index.html).
    for pattern in MANAGED_GLOBS:
        for path in dest.glob(pattern):
            if path.is_file() and path.name not in wanted:
                print(f"removing stale {path.name}", file=sys.stderr)
                path.unlink()

    width_pkg = max(len(r[0]) for r in rows)
    width_file = max(len(r[1]) for r in rows)
    lines = [
        HEADER,
        "# Tarballs fetched with `npm pack` and verified against these npm integrities:",
        *(f"#   {spec} {integrity}" for spec, integrity in INTEGRITY.items()),
        "#",
        f"# {'package@version':<{width_pkg - 2}} {'file':<{width_file}} sha256",
        *(f"{spec:<{width_pkg}} {name:<{width_file}} {digest}" for spec, name, digest in rows),
    ]
    (dest / VERSIONS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dest",
        type=Path,
        default=DEFAULT_DEST,
        help=f"output directory (default: {DEFAULT_DEST.relative_to(REPO_ROOT)})",
    )
    args = parser.parse_args(argv)
    rows = refresh(args.dest)
    for spec, name, digest in rows:
        print(f"{spec:<20} {name:<30} {digest}")
    print(f"wrote {len(rows)} files + {VERSIONS_FILE} to {args.dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
