"""Headless Chromium for the kiosk tests: the system browser driven by Playwright.

Never ``playwright install``: it downloads browsers. The kiosk's own Chromium
(Debian's ``chromium``) is what the tests drive. Also a small command to take
the README's screenshot::

    python -m tests.support.browser http://127.0.0.1:8080/ docs/kiosk.png --look bold
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}


def missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        return "no system Chromium at /usr/bin/chromium (apt-get install chromium chromium-driver; make browser-deps)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install 'playwright>=1.40'; never `playwright install`)"
    return None


@contextlib.contextmanager
def chromium():
    """A headless system Chromium (Playwright ``Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    exe = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(url: str, out: Path, look: str | None = None, category: str | None = None, wait_s: float = 4.0) -> None:
    """Open the kiosk page at 1280x800, optionally choose a look and a category, and save a PNG."""
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(url)
        page.wait_for_function("document.querySelector('#live').naturalWidth > 0", timeout=15000)
        if look:
            page.click(f"#choices [data-look='{look}']")
        if category:
            page.click(f"#categories [data-cat='{category}']")
        page.wait_for_timeout(wait_s * 1000)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Screenshot the kiosk page (1280x800).")
    ap.add_argument("url")
    ap.add_argument("out", type=Path)
    ap.add_argument("--look")
    ap.add_argument("--category")
    ap.add_argument("--wait", type=float, default=4.0)
    a = ap.parse_args()
    screenshot(a.url, a.out, a.look, a.category, a.wait)
