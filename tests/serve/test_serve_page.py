"""The page at / in a real headless browser: type, translate, see the attention heatmap.

Needs chromium and its driver (Debian: `apt-get install chromium chromium-driver`, which
.ci/run does) and selenium (the test extra); skipped where they are missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")

from helpers.serving import post, running  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from nmt.recipe.schema import MAX_BEAM  # noqa: E402
from nmt.serve.engine import TorchEngine  # noqa: E402
from nmt_runtime.serve.app import create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER) and os.environ.get("NMT_REQUIRE_BROWSER"):  # set by .ci/run
    raise RuntimeError("NMT_REQUIRE_BROWSER is set but chromium or chromedriver is missing")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="no chromium/chromedriver (apt-get install chromium)"
)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1100,900")
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))


@pytest.fixture(scope="module")
def page_server(model_dir: Path):
    with running(create_app([TorchEngine.load(model_dir, device="cpu")])) as address:
        yield address


def heatmap_shape(driver) -> tuple[int, list[int]]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#heatmap tbody tr")
    return len(rows), [len(r.find_elements(By.CSS_SELECTOR, "td.cell")) for r in rows]


@pytest.mark.slow
def test_typing_a_sentence_shows_its_translation_and_attention(page_server):
    sentence = "3 1 4 1 5"
    status, data = post(page_server, "/api/translate", {"text": sentence, "attention": True})
    expected = data["translations"][0]
    driver = browser()
    try:
        driver.get(f"http://{page_server}/")
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
        driver.find_element(By.ID, "source").send_keys(sentence)
        driver.find_element(By.ID, "translate").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#heatmap tbody tr"))
        translation = driver.find_element(By.ID, "translation").text
        rows, columns = heatmap_shape(driver)
        errors = driver.find_element(By.ID, "error").text
    finally:
        driver.quit()
    assert status == 200 and errors == ""
    assert translation == expected["text"].strip()
    assert rows == len(expected["target_pieces"]) + 1  # the pieces and </s>
    assert columns == [len(expected["source_pieces"])] * rows


@pytest.mark.slow
def test_an_error_is_shown_on_the_page_not_thrown(page_server):
    driver = browser()
    try:
        driver.get(f"http://{page_server}/")
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
        driver.find_element(By.ID, "source").send_keys("1 " * 3000)  # over --max-chars
        driver.find_element(By.ID, "translate").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "error").text)
        message = driver.find_element(By.ID, "error").text
        rows, _ = heatmap_shape(driver)
    finally:
        driver.quit()
    assert "--max-chars" in message and rows == 0


@pytest.mark.slow
def test_the_beam_box_goes_as_far_as_the_api(page_server):
    driver = browser()
    try:
        driver.get(f"http://{page_server}/")
        beam = driver.find_element(By.ID, "beam")
        biggest = beam.get_attribute("max")
        beam.clear()
        beam.send_keys(str(MAX_BEAM))
        fits = driver.execute_script("return arguments[0].checkValidity()", beam)
    finally:
        driver.quit()
    assert (biggest, fits) == (str(MAX_BEAM), True)
