"""Make the README's picture of ``nicegan serve``: the page in headless Chromium after translating one image.

    python docs/serve_screenshot.py --checkpoint RUN_OR_BUNDLE --image cat.jpg [--direction a2b] \
        [--full-resolution] [--out docs/images/serve.png]

Run by hand when the page changes (the tests never write into the repository). It starts the app on a free port of
127.0.0.1 and drives the system Chromium the way the browser tests do (tests/browser.py), so it needs the same
``chromium`` and ``chromium-driver`` packages.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="run folder, checkpoint file or bundle")
    parser.add_argument("--image", required=True, help="the image to translate")
    parser.add_argument("--direction", default="a2b", choices=["a2b", "b2a"])
    parser.add_argument("--full-resolution", action="store_true", help="tick the full resolution box")
    parser.add_argument("--out", default=str(REPO / "docs" / "images" / "serve.png"))
    parser.add_argument("--size", default="1100x790", help="browser window WxH (default: %(default)s)")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from nicegan import Translator
    from nicegan.web.serve import TranslationService, create_app
    from tests.browser import new_chrome, serve_app

    width, height = (int(v) for v in args.size.split("x"))
    service = TranslationService(Translator.load(args.checkpoint, "cpu"))
    browser = new_chrome(width, height)
    try:
        with serve_app(create_app(service)) as url:
            browser.get(url + "/")
            Select(browser.find_element(By.ID, "direction")).select_by_value(args.direction)
            if args.full_resolution:
                browser.find_element(By.ID, "full").click()
            browser.find_element(By.ID, "file").send_keys(str(Path(args.image).resolve()))
            state = lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-state")
            WebDriverWait(browser, 60).until(lambda d: state() in ("done", "error"))
            if state() != "done":
                raise SystemExit(f"the page says: {browser.find_element(By.ID, 'message').text}")
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            if not browser.save_screenshot(str(out)):
                raise SystemExit(f"could not write {out}")
            print(f"wrote {out}")
    finally:
        browser.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
