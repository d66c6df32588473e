"""Everything the pages load comes from this server: vendored npm files with their licences,
the app's own scripts, and no address outside it in any page or script."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import mechscope.app
from mechscope.app import create_app

STATIC = Path(mechscope.app.__file__).parent / "static"
ROOT = Path(__file__).parents[2]
PAGES = ["/", "/compare", "/attention", "/features", "/playground"]


def test_vendored_d3_is_the_pinned_version_with_its_licence():
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/d3"]["version"]
    assert json.loads((ROOT / "web" / "package.json").read_text())["dependencies"]["d3"] == version
    bundled = (STATIC / "vendor" / "d3.min.js").read_text()
    assert bundled.startswith(f"// https://d3js.org v{version} Copyright")
    assert "Permission to use, copy, modify, and/or distribute" in (STATIC / "vendor" / "d3.LICENSE.txt").read_text()


@pytest.fixture(scope="module")
def client(stored):
    with TestClient(create_app(stored.path), base_url="http://127.0.0.1:8765") as client:
        yield client


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_scripts_and_styles_from_this_server_only(client, path):
    html = client.get(path).text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    for source in sources:
        if source.startswith("/static/"):
            assert client.get(source).status_code == 200, source


def test_the_apps_scripts_fetch_nothing_from_outside():
    for script in (STATIC / "js").glob("*.js"):
        text = script.read_text()
        assert not re.search(r"https?://", text), script.name
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and ".html(" not in text, script.name
