"""`/docs` in a real browser: headless Chromium (Debian's `chromium`, driven through Debian's
`chromedriver` by Selenium) renders the service's OpenAPI 3.1 document with the bundled Swagger UI,
lists the operations, and one of them can be tried from the page against the live server."""

from __future__ import annotations

import os
import shutil

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("REQUIRE_CHROMIUM"):
            pytest.fail("chromium and chromedriver are required (REQUIRE_CHROMIUM=1) but not installed")
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_docs_lists_every_operation_and_one_can_be_tried(browser, live_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(f"{live_url}/docs")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    page = browser.page_source
    assert "Unable to render this definition" not in page
    shown = {(block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.lower(),
              block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"))
             for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")}
    spec = __import__("requests").get(f"{live_url}/openapi.json", timeout=30).json()
    documented = {(method, path) for path, item in spec["paths"].items() for method in item}
    assert documented and documented <= shown, sorted(documented - shown)

    # Try GET /v1/models from the page: expand it, "Try it out", "Execute", read the live answer.
    block = next(b for b in browser.find_elements(By.CSS_SELECTOR, ".opblock-get")
                 if b.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path") == "/v1/models")
    block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait.until(lambda _: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
    block.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    wait.until(lambda _: block.find_elements(By.CSS_SELECTOR, ".execute"))
    block.find_element(By.CSS_SELECTOR, ".execute").click()
    wait.until(lambda _: block.find_elements(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"))
    status = block.find_element(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status").text.strip()
    body = block.find_element(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_description").text
    assert status.startswith("200"), (status, body[:500])
    assert "sentence-transformers/all-MiniLM-L6-v2" in body
