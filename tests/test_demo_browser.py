"""trm-demo as a person uses it: a real headless Chromium opens the page, enters a Sudoku,
presses Solve, and finds the step grids and the verdict.

The browser is the system's Chromium (Debian's ``chromium``), driven by Playwright with
``executable_path``: nothing is downloaded at test time. Without Chromium or Playwright
the test is skipped, saying which is missing, unless ``TRM_REQUIRE_BROWSER=1`` (CI),
which turns the skip into a failure. The test saves a screenshot (into the test's
folder; with ``TRM_UPDATE_SCREENSHOT=1``, over ``docs/images/demo.png``, the one the
README shows), and checks the page asks nothing of any host but this one.

The model is a tiny one trained in a second; ``TRM_DEMO_MODEL=FOLDER`` serves a trained
Sudoku model instead (the README's screenshot comes from the ``cpu`` preset's model).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from pathlib import Path

import pytest

import trm_core
from trm_core.demo_app import serve

from . import tiny_sudoku

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "images" / "demo.png"
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium() -> str:
    """The path of the system's Chromium, or a skip (a failure under TRM_REQUIRE_BROWSER=1)."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install playwright)")
    found = shutil.which("chromium") or next((p for p in CANDIDATES if Path(p).exists()), None)
    if found is None:
        missing.append("Chromium (apt-get install -y chromium)")
    try:
        import gradio  # noqa: F401
    except ImportError:
        missing.append("gradio (pip install 'trm-core[demo]')")
    if missing:
        reason = "the browser test needs " + " and ".join(missing)
        if os.environ.get("TRM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}, and TRM_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    return found


def typed(tab) -> str:
    """The page's 9x9 grid as an 81-character puzzle."""
    where = '#trm-cells [data-testid="cell-{}-{}"] span[data-editable]'
    cells = [
        tab.locator(where.format(r, c)).inner_text().strip() for r in range(9) for c in range(9)
    ]
    return "".join(text or "." for text in cells)


def test_a_person_solves_a_sudoku_in_a_real_browser(tmp_path):
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright

    model = os.environ.get("TRM_DEMO_MODEL") or tiny_sudoku.train(tmp_path)
    total = trm_core.load_model(model).model.config.halt_max_steps
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    page = serve(str(model), port=port, block=False)
    here = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            try:
                tab = browser.new_page(viewport={"width": 1280, "height": 900})
                requests: list[str] = []
                tab.on("request", lambda request: requests.append(request.url))
                tab.goto(here + "/", wait_until="networkidle")
                assert "trm-demo: sudoku" in tab.title()
                text = tab.locator("#trm-puzzle textarea")
                assert len(text.input_value()) == 81  # the page opens on an example
                assert tab.locator("#trm-examples").count() == 1

                # typing a digit into the 9x9 grid spells the text
                blank = text.input_value().index(".")
                row, col = divmod(blank, 9)
                tab.locator(f'#trm-cells [data-testid="cell-{row}-{col}"]').dblclick()
                tab.keyboard.type("5")
                tab.keyboard.press("Enter")
                expect(text).to_have_value(re.compile(f"^.{{{blank}}}5"), timeout=15_000)
                # a pasted puzzle fills the grid
                text.fill(tiny_sudoku.EASY)
                deadline = time.monotonic() + 15
                while typed(tab) != tiny_sudoku.EASY and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert typed(tab) == tiny_sudoku.EASY
                began = time.perf_counter()
                tab.locator("#trm-solve").click()
                tab.locator(".trm-step").first.wait_for(timeout=30_000)
                first = time.perf_counter() - began
                tab.locator(".trm-verdict").wait_for(timeout=30_000)
                every = time.perf_counter() - began
                assert tab.locator(".trm-step").count() == total >= 2
                assert "answered in" in tab.locator(".trm-verdict").inner_text()
                assert tab.locator("svg.trm-halt circle").count() == total
                print(f"\nfirst step on screen {first:.2f} s after Solve, all steps {every:.2f} s")
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                shot = (
                    SCREENSHOT
                    if os.environ.get("TRM_UPDATE_SCREENSHOT") == "1"
                    else (tmp_path / "demo.png")
                )
                tab.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000

                # a malformed puzzle: the task's reason on the page, and the page still works
                tab.locator("#trm-puzzle textarea").fill("53..7")
                tab.locator("#trm-solve").click()
                tab.locator(".trm-error").wait_for(timeout=30_000)
                assert "expected 81 characters, got 5" in tab.locator(".trm-error").inner_text()
                assert "Traceback" not in tab.content()
                outside = [url for url in requests if not url.startswith(here)]
                assert not outside, f"the page asked other hosts: {outside[:5]}"
            finally:
                browser.close()
    finally:
        page.close()
