#!/usr/bin/env python3
"""Vendor the console's view library into ``recoverly/static/console/vendor/``.

The console (``recoverly/static/console/``) is plain ES modules on Preact with htm
templates, so it needs no build step and no Node at run time. This script fetches the
pinned ES module builds from the npm registry with the same helpers (``npm pack``,
integrity check, licence beside each package, ``VERSIONS.txt`` of sha256s) as
``scripts/refresh_graphiql.py``; ``index.html`` maps the bare names ``preact``,
``preact/hooks`` and ``htm`` to these files with an import map.

Usage::

    python3 scripts/refresh_console.py [--dest DIR]

To upgrade, change the pins below (``npm view <pkg>@<version> dist.integrity``), rerun
the script and commit the result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import refresh_graphiql as vendor

PREACT_VERSION = "10.29.8"  # last 10.x: the htm integration and hooks API the console uses
HTM_VERSION = "3.1.1"

vendor.INTEGRITY = {
    f"preact@{PREACT_VERSION}": (
        "sha512-ej2aVZ+vZ8WO7tvlQWRM9N63A0KzF9q4mWJfDUHgYaIofWY9hu74QdnQrjoPMmZi2/nZ5gN0bJCQF49xQqx09Q=="
    ),
    f"htm@{HTM_VERSION}": (
        "sha512-983Vyg8NwUE7JkZ6NmOqpCZ+sh1bKv2iYTlUkzlWmA5JD2acKoxd4KVxbMmxX/85mtfdnDmTFoNKcg5DGAvxNQ=="
    ),
}
vendor.PACKAGES = (
    vendor.Package(
        "preact",
        PREACT_VERSION,
        {
            "package/dist/preact.module.js": "preact.module.js",
            "package/hooks/dist/hooks.module.js": "hooks.module.js",
        },
    ),
    vendor.Package("htm", HTM_VERSION, {"package/dist/htm.module.js": "htm.module.js"}),
)
vendor.HEADER = "# Console view library, written by scripts/refresh_console.py -- do not edit."
vendor.MANAGED_GLOBS = ("*.module.js", "LICENSE.*", vendor.VERSIONS_FILE)
DEFAULT_DEST = vendor.REPO_ROOT / "recoverly" / "static" / "console" / "vendor"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="output directory")
    args = parser.parse_args(argv)
    rows = vendor.refresh(args.dest)
    for spec, name, digest in rows:
        print(f"{spec:<16} {name:<20} {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
