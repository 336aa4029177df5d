"""Browser (e2e) fixtures: the real app served by ``streamlit run`` and driven by Chromium.

- ``served_app(home, demos=False) -> str``: starts ``streamlit run app.py`` on a free
  localhost port with ``CATALOG_HOME=home`` (and ``CATALOG_NO_DEMO=1`` unless ``demos``),
  waits for ``/_stcore/health`` and returns the base URL; every server it started is
  stopped when the test ends, also on failure. ``module_served_app`` is the same factory
  with module scope (one server shared by the tests of a module).
- ``browser_page``: a fresh Playwright page (1400×1000) in the session's headless
  Chromium (Debian's ``/usr/bin/chromium``; Playwright's own browser downloads are never
  used). Without it the browser tests are skipped, or fail if ``CATALOG_REQUIRE_BROWSER=1``.
- On a failed test, a full-page screenshot and each running server's log are saved in
  ``test-artifacts/<test name>/`` and their paths are printed in the report.
- ``wait_idle`` fixture: ``wait_idle(page)`` waits until the Streamlit script run has finished (no fixed sleeps).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

import pytest

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
REQUIRE_BROWSER_ENV = "CATALOG_REQUIRE_BROWSER"
ARTIFACTS = REPO / "test-artifacts"
VIEWPORT = {"width": 1400, "height": 1000}
START_TIMEOUT_S = 180.0  # a cold start imports torch & co. on a loaded machine
STOP_TIMEOUT_S = 15.0
UI_TIMEOUT_MS = 120_000  # Playwright waits for the page's visible state

_SERVERS = pytest.StashKey[list]()


@dataclass
class AppServer:
    """One ``streamlit run app.py`` process; ``url`` has no trailing slash."""

    home: Path
    port: int
    log_path: Path
    proc: subprocess.Popen | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self, *, demos: bool = False, timeout: float = START_TIMEOUT_S) -> str:
        """Start the server and block until ``/_stcore/health`` answers ``ok``.

        Raises RuntimeError (with the log tail) if it exits or does not answer in time.
        """
        env = {**os.environ, "CATALOG_HOME": str(self.home), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
        env.pop("CATALOG_NO_DEMO", None)
        if not demos:
            env["CATALOG_NO_DEMO"] = "1"
        cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
               "--server.port", str(self.port), "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
               "--browser.gatherUsageStats", "false"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_healthy(timeout)
        return self.url

    def _wait_healthy(self, timeout: float) -> None:
        assert self.proc is not None
        polls = max(1, int(timeout / 0.2))
        for _ in range(polls):
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200 and resp.read().strip() == b"ok":
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet: wait on the process below
            try:
                code = self.proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"streamlit exited with code {code} before it was healthy; "
                               f"log {self.log_path}:\n{self.log_tail()}")
        self.stop()
        raise RuntimeError(f"streamlit on port {self.port} not healthy after {timeout:.0f} s; "
                           f"log {self.log_path}:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the process (kill it if it does not exit in time); idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_factory(config: pytest.Config, log_dir: Path) -> tuple[Callable[..., str], list[AppServer]]:
    started: list[AppServer] = []
    live = config.stash.setdefault(_SERVERS, [])

    def start(home: Path | str, *, demos: bool = False) -> str:
        server = AppServer(Path(home), free_port(), log_dir / f"streamlit-{len(started)}.log")
        started.append(server)
        live.append(server)
        return server.start(demos=demos)

    return start, started


def _stop_all(config: pytest.Config, servers: list[AppServer]) -> None:
    live = config.stash.get(_SERVERS, [])
    for server in servers:
        server.stop()
        if server in live:
            live.remove(server)


@pytest.fixture
def served_app(request, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Factory ``served_app(home, demos=False) -> base URL``; servers stop after the test."""
    start, started = _server_factory(request.config, tmp_path / "server-logs")
    yield start
    _stop_all(request.config, started)


@pytest.fixture(scope="module")
def module_served_app(request, tmp_path_factory) -> Iterator[Callable[..., str]]:
    """Like ``served_app`` but the servers live until the module's tests are done."""
    start, started = _server_factory(request.config, tmp_path_factory.mktemp("server-logs"))
    yield start
    _stop_all(request.config, started)


def _need_browser(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        pytest.fail(f"{reason} and {REQUIRE_BROWSER_ENV}=1", pytrace=False)
    pytest.skip(f"{reason}: browser tests skipped (apt-get install chromium; "
                f"set {REQUIRE_BROWSER_ENV}=1 to make this an error)")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """The session's headless Chromium (a Playwright ``Browser``); ``expect`` waits up to
    UI_TIMEOUT_MS (cold Streamlit runs on a loaded CI machine take tens of seconds)."""
    if not CHROMIUM.exists():
        _need_browser(f"{CHROMIUM} not found")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _need_browser("the playwright Python package is not installed")
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def browser_page(browser) -> Iterator[object]:
    """A fresh page (own context: no cookies or storage shared between tests)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def _wait_idle(page, timeout_ms: int = UI_TIMEOUT_MS) -> None:
    """Wait until the app is connected and its script run has finished."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]'
                 '[data-test-connection-state="CONNECTED"]').wait_for(timeout=timeout_ms)


@pytest.fixture
def wait_idle() -> Callable[..., None]:
    """``wait_idle(page, timeout_ms=...)``: block until the script run has finished.

    Use after an action, together with a wait for the visible result of that action
    (right after a click the previous run's idle state may still be showing).
    """
    return _wait_idle


def full_page_screenshot(page, path: Path) -> Path:
    """Screenshot of the whole app: Streamlit scrolls inside ``stMain``, not the document,
    so the viewport is first grown to the content's height."""
    height = page.evaluate(
        "() => Math.max(...['stMain', 'stSidebarContent'].map(id => {"
        " const e = document.querySelector(`[data-testid=${id}]`);"
        " return e ? e.scrollHeight : 0; }))")
    size = page.viewport_size or VIEWPORT
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height) + 8)})
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def _artifact_dir(item: pytest.Item) -> Path:
    return ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name).strip("_")


def _save_artifacts(item: pytest.Item) -> list[Path]:
    out = _artifact_dir(item)
    shutil.rmtree(out, ignore_errors=True)
    saved: list[Path] = []
    page = item.funcargs.get("browser_page") if hasattr(item, "funcargs") else None
    if page is not None and not page.is_closed():
        out.mkdir(parents=True, exist_ok=True)
        from playwright.sync_api import Error as PlaywrightError

        try:
            saved.append(full_page_screenshot(page, out / "page.png"))
        except PlaywrightError as err:  # a dead page must not hide the real failure
            (out / "screenshot-error.txt").write_text(f"{type(err).__name__}: {err}\n")
            saved.append(out / "screenshot-error.txt")
    for server in item.config.stash.get(_SERVERS, []):
        if server.log_path.exists():
            out.mkdir(parents=True, exist_ok=True)
            target = out / f"server-{server.port}.log"
            shutil.copyfile(server.log_path, target)
            saved.append(target)
    return saved


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a failed setup or call: save the page screenshot and server logs, print paths."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        saved = _save_artifacts(item)
        if saved:
            text = "\n".join(str(p) for p in saved)
            report.sections.append(("e2e artifacts", text))
            terminal = item.config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None:
                terminal.write_line(f"\n[e2e] artifacts of {item.nodeid}:\n{text}")
    return report
