"""The self-hosted GraphiQL page must only load assets served by recoverly itself.

``recoverly/static/graphiql`` is mounted at ``/graphiql-assets/``; its vendored
files are written by ``scripts/refresh_graphiql.py`` together with
``VERSIONS.txt`` (package@version, file, sha256).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path

import pytest

ASSET_PREFIX = "/graphiql-assets/"
STATIC_DIR = Path(str(files("recoverly").joinpath("static", "graphiql")))
INDEX_HTML = STATIC_DIR / "index.html"
VERSIONS_TXT = STATIC_DIR / "VERSIONS.txt"
REFRESH_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "refresh_graphiql.py"


class _RefCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: list[str] = []
        self.other_refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name not in ("src", "href", "srcset", "poster", "data", "action"):
                continue
            value = value or ""
            if tag == "script" and name == "src":
                self.scripts.append(value)
            elif tag == "link" and name == "href":
                self.links.append(value)
            else:
                self.other_refs.append((tag, name, value))


def _collect() -> _RefCollector:
    parser = _RefCollector()
    parser.feed(INDEX_HTML.read_text(encoding="utf-8"))
    parser.close()
    return parser


def _versions() -> list[tuple[str, str, str]]:
    rows = []
    for line in VERSIONS_TXT.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        spec, name, digest = line.split()
        rows.append((spec, name, digest))
    return rows


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_index_html_loads_only_same_server_assets() -> None:
    refs = _collect()
    assert refs.scripts, "index.html loads no <script src>"
    assert refs.links, "index.html loads no <link href>"
    assert not refs.other_refs, f"unexpected external references: {refs.other_refs}"
    for ref in refs.scripts + refs.links:
        # A same-server absolute path: no scheme, no protocol-relative "//host".
        assert ref.startswith(ASSET_PREFIX), f"{ref!r} is not under {ASSET_PREFIX}"
        assert "//" not in ref and ":" not in ref and ".." not in ref, ref
        relative = ref[len(ASSET_PREFIX) :].split("?", 1)[0].split("#", 1)[0]
        assert relative, ref
        assert (STATIC_DIR / relative).is_file(), f"{ref!r} -> missing {STATIC_DIR / relative}"


def test_index_html_loads_react_and_graphiql_bundles() -> None:
    refs = _collect()
    names = [ref[len(ASSET_PREFIX) :] for ref in refs.scripts]
    # react must come before react-dom, both before the graphiql UMD bundle.
    assert names == [
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphiql.min.js",
    ]
    assert f"{ASSET_PREFIX}graphiql.min.css" in refs.links


def test_index_html_has_no_web_urls() -> None:
    text = INDEX_HTML.read_text(encoding="utf-8").lower()
    assert "http://" not in text
    assert "https://" not in text
    assert not re.search(r"""["'(=]\s*//[a-z0-9]""", text), "protocol-relative URL in index.html"


def test_graphiql_css_loads_nothing_remote() -> None:
    css = (STATIC_DIR / "graphiql.min.css").read_text(encoding="utf-8")
    assert "@import" not in css
    for target in re.findall(r"url\(\s*['\"]?([^'\")]*)", css):
        assert target.startswith("data:"), f"graphiql.min.css references {target[:80]!r}"


def test_versions_txt_matches_files() -> None:
    rows = _versions()
    assert rows, "VERSIONS.txt lists no files"
    listed = set()
    for spec, name, digest in rows:
        assert re.fullmatch(r"(@?[a-z0-9._-]+(/[a-z0-9._-]+)?)@\d+\.\d+\.\d+\S*", spec), spec
        assert re.fullmatch(r"[0-9a-f]{64}", digest), (name, digest)
        path = STATIC_DIR / name
        assert path.is_file(), f"VERSIONS.txt lists missing file {name}"
        assert _sha256(path) == digest, f"sha256 of {name} does not match VERSIONS.txt"
        listed.add(name)

    # Every vendored file is accounted for, and every package ships its licence.
    vendored = {
        p.name
        for p in STATIC_DIR.iterdir()
        if p.is_file() and p.name not in ("index.html", "VERSIONS.txt")
    }
    assert vendored == listed, f"not in VERSIONS.txt: {vendored - listed}"
    for package in {spec.rsplit("@", 1)[0] for spec, _, _ in rows}:
        assert f"LICENSE.{package.replace('/', '-')}" in listed, f"no licence for {package}"


def test_versions_txt_matches_refresh_script_pins() -> None:
    if not REFRESH_SCRIPT.is_file():
        pytest.skip("scripts/refresh_graphiql.py not available")
    spec = importlib.util.spec_from_file_location("refresh_graphiql", REFRESH_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up in sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]

    expected = {(pkg.spec, out) for pkg in module.PACKAGES for out in pkg.files.values()}
    expected |= {(pkg.spec, f"LICENSE.{pkg.name}") for pkg in module.PACKAGES}
    assert {(spec_, name) for spec_, name, _ in _versions()} == expected


def _token_logic() -> str:
    match = re.search(
        r'<script id="token-logic">(.*?)</script>', INDEX_HTML.read_text(encoding="utf-8"), re.S
    )
    assert match, "index.html has no token-logic script"
    return match.group(1)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_graphiql_sends_the_saved_or_fragment_token_with_every_request() -> None:
    """The page's own token logic, run by a JavaScript engine: a ``#token=`` fragment is
    read (and removed from the URL), and every request (the schema fetch first) carries
    ``Authorization: Bearer <token>`` unless the Headers pane sets one."""
    checks = """
    const T = RecoverlyToken;
    console.log(JSON.stringify([
      T.fromFragment("#token=abc123"),
      T.fromFragment("#foo=1&token=%20xyz%20"),
      T.fromFragment(""),
      T.withoutToken("#token=abc123"),
      T.withoutToken("#foo=1&token=abc"),
      T.authorization({}, "abc123"),
      T.authorization({"Authorization": "Bearer <token>"}, "abc123"),
      T.authorization({"authorization": "Bearer other"}, "abc123"),
      T.authorization({}, "Bearer abc123"),
      T.authorization({}, ""),
    ]));
    """
    result = subprocess.run(
        ["node", "-e", _token_logic() + checks], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [
        "abc123",
        "xyz",
        None,
        "",
        "#foo=1",
        "Bearer abc123",
        "Bearer abc123",
        "Bearer other",
        "Bearer abc123",
        None,
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to parse the page's script")
def test_graphiql_page_scripts_parse(tmp_path: Path) -> None:
    page = INDEX_HTML.read_text(encoding="utf-8")
    inline = re.findall(r"<script(?: id=\"[a-z-]+\")?>(.*?)</script>", page, re.S)
    assert len(inline) == 2
    for number, script in enumerate(inline):
        path = tmp_path / f"inline-{number}.js"
        path.write_text(script, encoding="utf-8")
        subprocess.run(["node", "--check", str(path)], check=True, capture_output=True)
    assert "RecoverlyToken.authorization(headers, savedToken)" in inline[1]
