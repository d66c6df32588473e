"""The app in a real browser: headless Chromium (Debian's, driven by Playwright) against the
server on loopback. Every page opens without a console error, clicks go where they should,
markup in prompts shows as text, nothing is fetched from outside, and a screenshot of each
page is kept in the test's tmp dir."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(CHROMIUM is None, reason="headless chromium is not installed (make e2e-setup)")]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


class Watched:
    """A page whose console errors, dialogs and outside requests are recorded."""

    def __init__(self, browser, server: str, shots):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        self.page = self.context.new_page()
        self.server, self.shots = server, shots
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.context.route("**/*", self._route)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept() if dialog.type == "confirm" else dialog.dismiss()

    def _route(self, route) -> None:
        if route.request.url.startswith(self.server):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def open(self, path: str):
        self.page.goto(self.server + path)
        self.page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        return self.page

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


def wait_until(page, expression: str, timeout: float = 60.0) -> None:
    """Poll a JavaScript expression until it is true (the app's Content-Security-Policy forbids
    the eval that ``page.wait_for_function`` needs; ``page.evaluate`` runs outside it)."""
    for _ in range(int(timeout * 10)):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"still false after {timeout} s: {expression}")


@pytest.fixture
def web(browser, server, tmp_path):
    watched = Watched(browser, server, tmp_path)
    yield watched
    watched.context.close()
    assert watched.outside == [], f"requests left the machine: {watched.outside}"


def test_runs_page_filters_and_opens_an_investigation(web, stored):
    page = web.open("/")
    assert page.locator("#runs tbody tr").count() >= 2
    page.select_option("select[name=command]", "investigate")
    wait_until(page, "document.querySelectorAll('#runs tbody tr').length === 1")
    web.shot("runs")
    page.click(f"a[href='/runs/{stored.investigation}']")
    page.wait_for_selector("body[data-ready='1']")
    for section in ("summary", "behaviour", "split", "where", "who", "circuit", "features", "record"):
        assert page.locator(f"section#{section}").count() == 1, section
    split = page.locator("#split").inner_text()
    assert "<script>alert(1)</script>" in split and page.locator("#split script").count() == 0
    page.locator("#where .heatmap rect.cell").first.hover()
    assert page.locator("#tooltip").is_visible() and page.locator("#tooltip").inner_text()
    page.locator("details[data-stage=behaviour] summary").click()
    page.wait_for_selector("details[data-stage=behaviour] .jsontree")
    web.shot("run")
    assert web.errors == [] and web.dialogs == []


def test_a_click_on_a_head_opens_its_attention(web, stored):
    page = web.open(f"/runs/{stored.investigation}")
    page.locator("#who .heatmap rect.cell").nth(5).click()  # layer 1, head 1 of a 4-head model
    page.wait_for_url("**/attention?*")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#head-detail[data-head='L1H1']", timeout=60_000)
    assert page.locator(".attn-row").count() == 2
    wait_until(page, "document.getElementById('roles-from').textContent.includes('who stage')")
    page.locator(".attn-cell[data-head='L0H2']").click()
    page.wait_for_selector("#head-detail[data-head='L0H2']")
    page.locator("#head-detail .tokstrip .tok").nth(3).hover()
    assert "from position" in page.locator("#tooltip").inner_text()
    assert "<script>" in page.locator("#prompt").input_value() and page.locator("#attention script").count() == 0
    web.shot("attention")
    assert web.errors == [] and web.dialogs == []


def test_attention_rows_load_a_layer_at_a_time(web):
    layers: list[str] = []
    web.page.on("request", lambda r: "/api/attention/layer/" in r.url and layers.append(r.url))
    page = web.open("/attention?prompt=the%20cat%20sat%20on%20the%20mat")
    wait_until(page, "document.querySelectorAll('.attn-row[data-loaded=\"1\"]').length === 2")
    assert sorted(url.split("/layer/")[1].split("?")[0] for url in layers) == ["0", "1"]
    assert web.errors == []


def test_the_circuit_explorer_redraws_at_each_budget(web, stored):
    page = web.open(f"/runs/{stored.investigation}/circuit")
    chosen = page.locator("#app").get_attribute("data-edges")
    readout = page.locator("#budget-readout").inner_text()
    assert "chosen" in readout and "f =" in readout
    page.locator("#budget").focus()
    page.keyboard.press("End")
    wait_until(page, f"document.getElementById('app').dataset.edges !== '{chosen}'")
    assert "100%" in page.locator("#budget-readout").inner_text()
    node = page.locator(".node[data-node^='L']").first
    name = node.get_attribute("data-node")
    node.click()
    assert page.locator("#node-panel h3").first.inner_text() == name
    assert "direct logit attribution" in page.locator("#node-panel").inner_text()
    page.click("#show-pattern")
    page.wait_for_selector("#node-panel .heatmap", timeout=60_000)
    web.shot("circuit")
    assert web.errors == []


def test_features_search_open_and_export_as_neuronpedia_json(web, stored, tmp_path):
    page = web.open("/features")
    page.wait_for_selector("#feature-title")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 4
    second = rows.nth(1).get_attribute("data-feature")
    page.fill("#search", f"#{second}")
    wait_until(page, "document.querySelectorAll('#results tbody tr').length === 1")
    page.wait_for_selector(f"#feature-title:has-text('#{second}')")
    assert page.locator(".examples .tok").count() > 0 and page.locator("svg rect").count() > 0
    page.locator("#results input[type=checkbox]").check()
    with page.expect_download() as download:
        page.click("#export")
    saved = tmp_path / "export.json"
    download.value.save_as(saved)
    batch = json.loads(saved.read_text())
    assert set(batch) == {"model_id", "layer", "sae_set", "features"}
    assert [f["feature_index"] for f in batch["features"]] == [int(second)]
    web.shot("features")
    assert web.errors == []


def test_compare_two_runs_chosen_on_the_runs_page(web, stored):
    page = web.open("/")
    page.check(f"tr[data-run='{stored.investigation}'] input[type=checkbox]")
    page.check(f"tr[data-run='{stored.patch}'] input[type=checkbox]")
    page.click("#compare")
    page.wait_for_url("**/compare?*")
    page.wait_for_selector("#compare-table")
    assert page.locator("tr.differs[data-row=command]").count() == 1
    assert page.locator("tr.differs[data-row=model]").count() == 0
    web.shot("compare")
    assert web.errors == []


def test_playground_runs_a_typed_prompt_and_refuses_an_empty_one(web):
    page = web.open("/playground")
    page.fill("#prompt", "when mary and john went to the store , john gave a drink to <b>")
    page.click("#run")
    page.wait_for_selector("#out[data-done='1']", timeout=60_000)
    assert page.locator("#top-k tbody tr").count() == 10
    assert page.locator("#lens-table tbody tr").count() == 3  # L0, L1, final
    assert page.locator("#features .tok").count() > 0
    assert page.locator("#out b").count() == 0  # the typed markup stays text
    page.locator("#attention").scroll_into_view_if_needed()  # its rows load as they come into view
    wait_until(page, "document.querySelectorAll('.attn-row[data-loaded=\"1\"]').length === 2")
    web.shot("playground")
    assert web.errors == []
    page.fill("#prompt", "   ")
    page.click("#run")
    page.wait_for_selector("#out[data-done='error']")
    assert "the prompt is empty" in page.locator("#out .error").inner_text()
    assert all("400" in e for e in web.errors)  # the browser logs the refused request, nothing else


def test_a_run_is_deleted_from_the_runs_page_after_confirming(web, stored, server):
    from mechscope.store import open_store
    from mechscope.store.recorder import recording

    with open_store(stored.path) as store, recording(store, command="lens", model=stored.model) as run:
        run.stage("numbers", lambda: {"x": 1})
    page = web.open("/")
    page.click(f"tr[data-run='{run.run.id}'] button.danger")
    wait_until(page, f"!document.querySelector(\"tr[data-run='{run.run.id}']\")")
    assert len(web.dialogs) == 1 and run.run.id in web.dialogs[0]
    assert httpx.get(f"{server}/api/runs/{run.run.id}").status_code == 404
    assert web.errors == []
