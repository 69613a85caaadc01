"""Draw docs/serve-page.png: the page of `nmt serve`, in headless chromium, after a translation.

    python docs/screenshot.py --model runs/multi30k_de_en_best \
        --text "Zwei junge Männer spielen Fußball auf einer Wiese." --output docs/serve-page.png

Needs chromium, chromedriver and selenium (as the page's test does).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from nmt.serve.engine import load_engine
from nmt_runtime.serve.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--output", default="docs/serve-page.png")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app([load_engine([Path(args.model)], device=args.device)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1000"):
        options.add_argument(flag)
    service = webdriver.ChromeService(shutil.which("chromedriver"))  # no download attempt
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
        driver.find_element(By.ID, "source").send_keys(args.text)
        driver.find_element(By.ID, "translate").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#heatmap tbody tr"))
        driver.save_screenshot(args.output)
        print(f"{args.output}: {driver.find_element(By.ID, 'translation').text}")
    finally:
        driver.quit()
        server.should_exit = True


if __name__ == "__main__":
    main()
