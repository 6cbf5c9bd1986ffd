"""The web pages in a real headless browser (Debian's chromium, driven by Playwright).

Covers search and listing, the model and version pages (verdict, files, findings with
evidence, BOM, lineage graph, pull snippet), the live progress of push -> scan -> publish,
log-in, the admin quarantine review, version history and the rescans page.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_support import Live, clean_model, malicious_model

from modelward.registry.client import RegistryClient

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Browser tests run on SQLite only (the storage tests cover PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_push_scan_publish_in_browser(browser: Any, live: Live, tokens: dict[str, str],
                                      tmp_path: Path) -> None:
    page = browser.new_page()
    page.goto(live.url + "/")
    assert page.locator("#empty").is_visible()
    pub = RegistryClient(live.url, tokens["publisher"])
    pub.push(clean_model(tmp_path / "base"), "team/base", "1.0", description="base model")
    pub.wait("team/base", "1.0")
    # slow the next scan down a little so the page shows it in progress
    live.registry._executor.submit(__import__("time").sleep, 1.5)
    pub.push(clean_model(tmp_path / "m", seed=3), "team/bert", "2.0",
             description="fine-tuned", derived_from="team/base:1.0")
    page.goto(live.url + "/models/team/bert/versions/2.0")
    assert page.locator("#state").inner_text() in ("pending", "scanning")
    page.locator("#state.published").wait_for(timeout=30_000)  # the page follows the scan
    assert "modelward pull team/bert:2.0" in page.locator("#pull-snippet").inner_text()
    assert page.locator("#files tbody tr").count() == 3
    assert "team/base:1.0" in page.locator("#lineage svg").text_content()
    assert "Signed lineage record" in page.locator("#lineage").inner_text()
    page.locator("#bom summary").click()
    assert "CycloneDX" in page.locator("#bom pre").inner_text()
    # search from the header
    page.goto(live.url + "/")
    page.fill("input[name=q]", "fine")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/?q=fine")
    rows = page.locator("#models tbody tr")
    assert rows.count() == 1 and "team/bert" in rows.first.inner_text()
    rows.first.locator("a").click()
    assert page.locator("#versions tbody tr").count() == 1


def test_quarantine_review_in_browser(browser: Any, live: Live, tokens: dict[str, str],
                                      tmp_path: Path, marker_command: str) -> None:
    pub = RegistryClient(live.url, tokens["publisher"])
    pub.push(malicious_model(tmp_path / "bad", marker_command), "evil", "1")
    assert pub.wait("evil", "1")["state"] == "quarantined"
    page = browser.new_page()
    page.goto(live.url + "/admin/quarantine")
    assert "403" in page.locator("h1").inner_text()
    page.goto(live.url + "/login")
    page.fill("#token", "wrong")
    page.click("button[type=submit]")
    assert "invalid" in page.locator("#login-error").inner_text()
    page.fill("#token", tokens["admin"])
    page.click("main button[type=submit]")
    page.wait_for_url(live.url + "/")
    page.click("text=Quarantine")
    page.click("#quarantine a")
    evidence = page.locator("#findings .evidence").all_inner_texts()
    assert any("system" in e for e in evidence)
    assert page.locator("#pull-snippet").count() == 0
    page.fill("#review input[name=reason]", "pickle runs a shell command")
    page.click("#review button")
    page.locator("#state.rejected").wait_for()
    page.goto(live.url + "/admin/quarantine")
    assert page.locator("#empty").is_visible()
    assert any(e["action"] == "version.rejected" for e in live.registry.audit_log())
    page.goto(live.url + "/models/evil/versions/1")
    assert page.locator("#history tbody tr").count() == 2  # scan, then the review
    # rescans (of published and quarantined versions; rejected ones stay as they are):
    # started from the page, followed to the end
    pub.push(clean_model(tmp_path / "ok"), "ok", "1")
    assert pub.wait("ok", "1")["state"] == "published"
    page.click("text=Rescans")
    assert page.locator("#empty").is_visible()
    page.click("#start-rescan button")
    page.locator("#rescan-state.finished").wait_for(timeout=30_000)
    assert page.locator("#rescan-results tbody tr").count() == 1
    assert "1 / 1 versions" in page.locator("#rescan-text").inner_text()
