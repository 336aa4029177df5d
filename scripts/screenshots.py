"""Save full-page PNGs of the app's pages for the README.

Starts ``streamlit run app.py`` on a free localhost port with ``CATALOG_HOME=--home``
(building the demos there first with ``python -m core --home H demo digits api-docs``
if they are missing), opens each page in headless Chromium (Debian's
``/usr/bin/chromium``) and writes ``<out>/<url_path>.png``. Pages are the ``url_path``s
listed in app.py, in order.

    /work/venv/bin/python scripts/screenshots.py --home ~/catalog-demo [--pages catalog,clusters]
        [--out assets/screenshots] [--width 1400] [--dataset digits]

Exit code 2 (with a message) for an unknown page or a missing browser. Emoji page icons
need an emoji font (Debian: ``apt-get install fonts-noto-color-emoji``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
DEMOS = ("digits", "api-docs")
START_TIMEOUT_S = 180.0
PAGE_TIMEOUT_MS = 300_000
# The page is settled when the script run is over, no skeleton or stale element is left,
# every image has loaded and the DOM size did not change since the previous poll.
SETTLED_JS = """() => {
  const app = document.querySelector('[data-testid=stApp]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (!document.querySelector('[data-testid=stMain] h1')) return false;
  if (document.querySelector('[data-testid=stSkeleton], [data-stale=true]')) return false;
  if (![...document.images].every(i => i.complete)) return false;
  const n = document.querySelectorAll('*').length;
  const stable = window.__catalogDomSize === n;
  window.__catalogDomSize = n;
  return stable;
}"""


def page_paths(app_py: Path = REPO / "app.py") -> list[str]:
    """The ``url_path`` of every st.Page in app.py, in navigation order."""
    return re.findall(r'url_path="([^"]+)"', app_py.read_text())


def ensure_demos(home: Path) -> None:
    """Build the missing demo datasets in ``home`` (minutes on a laptop CPU)."""
    missing = [name for name in DEMOS if not (home / "datasets" / name / "rows.parquet").exists()]
    if missing:
        print(f"building demos {', '.join(missing)} in {home} …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "core", "--home", str(home), "demo", *missing],
                       cwd=REPO, check=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(home: Path, log_path: Path) -> Iterator[str]:
    """Run the app on ``home`` (demo building off) and yield its base URL; stop on exit.

    Raises RuntimeError with the log tail if the server exits or never answers
    ``/_stcore/health``.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CATALOG_HOME": str(home), "CATALOG_NO_DEMO": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
           "--server.port", str(port), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            _wait_healthy(proc, url, log_path)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def _wait_healthy(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    for _ in range(int(START_TIMEOUT_S / 0.2)):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet
        try:
            code = proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"streamlit exited with code {code}; see {log_path}")
    raise RuntimeError(f"streamlit not healthy after {START_TIMEOUT_S:.0f} s; see {log_path}")


def settle(page) -> None:
    page.wait_for_function(SETTLED_JS, polling=500, timeout=PAGE_TIMEOUT_MS)


def default_page(app_py: Path = REPO / "app.py") -> str | None:
    """The ``url_path`` of the st.Page marked ``default=True`` (served at "/")."""
    found = re.search(r'url_path="([^"]+)"[^)]*default=True', app_py.read_text())
    return found.group(1) if found else None


def open_page(page, base: str, name: str, default: str | None) -> None:
    """Go to page ``name`` through the sidebar navigation (keeps the session's state)."""
    target = base if name == default else f"{base}/{name}"
    if page.url.rstrip("/") != target:
        index = page.evaluate(
            "t => [...document.querySelectorAll('[data-testid=stSidebarNavLink]')]"
            ".findIndex(a => a.href.replace(/\\/$/, '') === t)", target)
        if index < 0:
            raise RuntimeError(f"no sidebar link to {target}; is {name!r} listed in app.py?")
        page.locator('[data-testid="stSidebarNavLink"]').nth(index).click()
        page.wait_for_url(lambda url: url.rstrip("/") == target, timeout=PAGE_TIMEOUT_MS)
    settle(page)


def shoot(page, target: Path) -> None:
    """Save a full-page PNG of the current (settled) page to ``target``."""
    size = dict(page.viewport_size)
    # Streamlit scrolls inside stMain, not the document: grow the viewport to the content.
    height = page.evaluate(
        "() => Math.max(...['stMain', 'stSidebarContent'].map(id => {"
        " const e = document.querySelector(`[data-testid=${id}]`);"
        " return e ? e.scrollHeight : 0; }))")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height) + 8)})
    settle(page)
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    page.set_viewport_size(size)


def pick_dataset(page, dataset: str) -> None:
    """Choose ``dataset`` in the sidebar picker if it is not already active."""
    box = page.get_by_role("combobox", name="Dataset")
    if box.count() and box.input_value() != dataset:
        box.click()
        page.get_by_role("option", name=dataset, exact=True).click()
        page.wait_for_function(
            "d => document.querySelector('input[aria-label=Dataset]')?.value === d", arg=dataset,
            timeout=PAGE_TIMEOUT_MS)
        page.evaluate("() => document.activeElement?.blur()")  # no focus ring in the shot
        settle(page)


def main(argv: list[str] | None = None) -> int:
    all_pages = page_paths()
    parser = argparse.ArgumentParser(description="Save full-page PNGs of the app's pages.")
    parser.add_argument("--home", type=Path, required=True, help="workspace (demos built if missing)")
    parser.add_argument("--pages", default=",".join(all_pages),
                        help=f"comma-separated url paths (default: all: {', '.join(all_pages)})")
    parser.add_argument("--out", type=Path, default=REPO / "assets" / "screenshots")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--dataset", default="digits", help="dataset picked in the sidebar")
    args = parser.parse_args(argv)
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    unknown = [p for p in pages if p not in all_pages]
    if unknown:
        parser.error(f"unknown page {', '.join(unknown)}; choose from {', '.join(all_pages)}")
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} not found; install it with: apt-get install chromium")

    from playwright.sync_api import sync_playwright

    home = args.home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    ensure_demos(home)
    log_path = Path(tempfile.mkdtemp(prefix="catalog-screenshots-")) / "streamlit.log"
    args.out.mkdir(parents=True, exist_ok=True)
    with serve(home, log_path) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": args.width, "height": 1000})
        page = context.new_page()
        # Open "/" first: the first run of a fresh server must be app.py (st.navigation);
        # a deep link such as /catalog would run pages/catalog.py alone (Streamlit's
        # pages/-folder mode), without the sidebar.
        page.goto(url)
        settle(page)
        if args.dataset:
            pick_dataset(page, args.dataset)
        default = default_page()
        for name in pages:
            open_page(page, url, name, default)
            target = args.out / f"{name}.png"
            shoot(page, target)
            print(target)
        browser.close()
    shutil.rmtree(log_path.parent)  # kept (and named in the error) if anything failed
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
