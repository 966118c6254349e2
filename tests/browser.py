"""Real headless-browser helpers shared by the web tests: a system Chromium driven by Selenium, and a live server.

Use in a test module with ``from tests.browser import chrome, serve_app`` (importing the fixture registers it).

The browser is Debian's ``chromium`` + ``chromium-driver`` (``.ci/run`` installs them when missing). Nothing is
downloaded at test time: the driver path is passed explicitly and Selenium Manager is told to stay offline. A
missing browser FAILS the test with a message saying how to install it - it is never a silent skip, because CI
must run these tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
INSTALL_HINT = "install it with: sudo apt-get install -y chromium chromium-driver (Debian/Ubuntu), as .ci/run does"


def _find(env: str, candidates: tuple[str, ...], name: str) -> str:
    explicit = os.environ.get(env)
    if explicit:
        if not Path(explicit).is_file():
            pytest.fail(f"{env}={explicit} does not exist; {INSTALL_HINT}", pytrace=False)
        return explicit
    for path in candidates:
        if Path(path).is_file():
            return path
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"the browser tests need the system {name} ({' or '.join(candidates)}, or set {env}); "
                f"{INSTALL_HINT}", pytrace=False)


def browser_paths() -> tuple[str, str]:
    """``(chromium binary, chromedriver binary)``; fails the calling test when either is missing."""
    return (_find("NICEGAN_CHROMIUM", CHROMIUM_CANDIDATES, "chromium"),
            _find("NICEGAN_CHROMEDRIVER", DRIVER_CANDIDATES, "chromedriver"))


def new_chrome(width: int = 1280, height: int = 900) -> Any:
    """A fresh headless Chromium WebDriver of the given window size (the caller quits it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = browser_paths()
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never try to download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", "--disable-background-networking",
                f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    try:
        browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    except Exception as exc:  # a broken install must read as such, not as a test failure deep in Selenium
        pytest.fail(f"could not start headless chromium ({binary}, driver {driver}): "
                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}", pytrace=False)
    browser.set_window_size(width, height)
    browser.set_page_load_timeout(30)
    browser.set_script_timeout(30)
    return browser


@pytest.fixture(scope="session")
def chrome() -> Iterator[Any]:
    """One headless Chromium WebDriver for the whole session (1280x900); tests should not rely on its cookies."""
    browser = new_chrome()
    try:
        yield browser
    finally:
        browser.quit()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_app(app: Any, port: int | None = None, host: str = "127.0.0.1", timeout: float = 20.0) -> Iterator[str]:
    """Run ``app`` (an ASGI app) with uvicorn in a background thread; yield its base URL (no trailing slash).

    The server is stopped and its thread joined on exit, so one test's server never leaks into the next."""
    import uvicorn

    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the test server on {host}:{port} stopped while starting")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the test server on {host}:{port} did not start within {timeout:.0f} s")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


# Backwards-friendly alias: some tests read better as ``with running_server(app) as url``.
running_server = serve_app


def save_screenshot(browser: Any, name: str) -> Path | None:
    """Save a screenshot of the current page as ``$NICEGAN_SCREENSHOT_DIR/<name>`` when that variable is set.

    The normal test run writes nothing into the repository; the README's pictures are made with e.g.
    ``NICEGAN_SCREENSHOT_DIR=docs/images python -m pytest tests/test_study.py -k chromium``."""
    folder = os.environ.get("NICEGAN_SCREENSHOT_DIR")
    if not folder:
        return None
    path = Path(folder).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    target = path / name
    if not browser.save_screenshot(str(target)):
        pytest.fail(f"could not save the screenshot {target}", pytrace=False)
    # cut the empty viewport below the page's content, so README pictures show the page, not the window
    from PIL import Image

    bottom = int(browser.execute_script("return Math.ceil(document.body.getBoundingClientRect().bottom) + 8"))
    with Image.open(target) as im:
        if 0 < bottom < im.height:
            im.crop((0, 0, im.width, bottom)).save(target, optimize=True)
    return target
