"""Helpers of the real-browser tests (``tests/test_browser_*.py``); not a test module.

The tests drive the system's Chromium (Debian's ``/usr/bin/chromium``; ``.ci/run``
installs it) through Playwright — never a browser that ``playwright install`` would
download. A server (JupyterLab, Voilà) runs in its own process group with private
Jupyter directories, is polled until it answers, and is always stopped by its process
id; every wait has a bound.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mamllib.data import cache_dir, data_dir
from mamllib.data.location import CACHE_ENV, DATA_ENV

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# Playwright itself adds --headless (headless=True), --no-sandbox,
# --disable-background-networking, --disable-component-update and its other defaults.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SERVER_START_S = 60  # until a server answers HTTP
PAGE_S = 180  # until a page shows its dashboard (kernel start and the notebook's imports)
CHANGE_S = 60  # until the dashboard has redrawn after one control changed


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_browser() -> None:
    """Skip when Chromium or Playwright is missing; in CI (``CI`` set), fail instead."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install playwright)")
    if missing:
        reason = "the real-browser tests need " + " and ".join(missing)
        if in_ci():
            pytest.fail(f"{reason}; CI is set, so they must run, not skip", pytrace=False)
        pytest.skip(reason)


def artifacts_dir() -> Path:
    """Where screenshots go: ``$MAMLLIB_ARTIFACTS``, else ``build/screenshots``."""
    path = Path(os.environ.get("MAMLLIB_ARTIFACTS") or ROOT / "build" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_token() -> str:
    return secrets.token_hex(16)


def jupyter_env(home: Path) -> dict[str, str]:
    """Environment of a server and its kernels: a private HOME and Jupyter directories
    (no user settings or workspaces leak in, nothing is written outside ``home``), fast
    mode, one thread, inline matplotlib, and this checkout's ``mamllib`` first on the path.
    The data location and the Omniglot cache stay the ones this process uses
    (``$MAMLLIB_DATA`` and ``$MAMLLIB_CACHE``, else ``~/.cache/mamllib`` of the real
    home), so kernels find the zips and read the decoded set instead of each fetching
    and decoding them again into its private home."""
    env = dict(os.environ)
    env.setdefault(DATA_ENV, str(data_dir()))
    env.setdefault(CACHE_ENV, str(cache_dir()))
    for name, sub in (
        ("HOME", "home"),
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
        ("IPYTHONDIR", "ipython"),
    ):
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env.update(
        MAMLLIB_FAST="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MPLBACKEND="module://matplotlib_inline.backend_inline",  # the suite's Agg draws nothing
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
    )
    return env


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (Linux ``/proc``; empty elsewhere)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(c) for c in children]
        todo += [int(c) for c in children]
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie, waiting for its parent to reap it, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Server:
    """A server started in its own process group, its output in ``log``."""

    def __init__(self, args: list[str], *, env: dict[str, str], cwd: Path, log: Path):
        self.args, self.log = args, log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_until_answers(self, url: str, timeout: float = SERVER_START_S) -> None:
        """Poll ``url`` until the server answers it (any HTTP status); raise (with the log)
        if the server exits or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.args[:3]} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=5):
                    return
            except urllib.error.HTTPError:
                return  # an HTTP status of any kind: the server is up and answering
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer in {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.5)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the process group (a Jupyter server shuts its kernels down), SIGKILL it
        after ``timeout`` s; then kill, by id, any kernel that outlived it (kernels run in
        their own sessions)."""
        pid = self.process.pid
        below = _descendants(pid)
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 5
        while (left := [p for p in below if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.2)
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def running_server(
    args: list[str], *, env: dict[str, str], cwd: Path, log: Path, probe: str
) -> Iterator[Server]:
    """Start a server, wait until ``probe`` answers, and stop it however the block ends."""
    server = Server(args, env=env, cwd=cwd, log=log)
    try:
        server.wait_until_answers(probe)
        yield server
    finally:
        server.stop()


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium, headless, through Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in LOCAL_HOSTS


class OfflineGuard:
    """Records every request a page makes and aborts any to another machine, so that a
    page that needs the internet fails the test at once instead of hanging on it.

    A request the page's own Content-Security-Policy refused never left the browser;
    ``sent_elsewhere`` leaves those out.
    """

    def __init__(self, page):
        self.requests: list[str] = []
        self.refused_by_csp: set[str] = set()
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("websocket", lambda socket: self.requests.append(socket.url))
        page.on("requestfailed", self._failed)
        page.route(lambda url: not is_local(url), lambda route: route.abort("blockedbyclient"))

    def _failed(self, request) -> None:
        if request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP"):  # Playwright says "csp"
            self.refused_by_csp.add(request.url)

    @property
    def sent_elsewhere(self) -> list[str]:
        return [u for u in self.requests if not is_local(u) and u not in self.refused_by_csp]


class KernelWatch:
    """The execution state of a page's kernel, from the server's REST API (a Voilà page
    shows none); the kernel is the one the page's websocket talks to."""

    def __init__(self, page, base: str):
        self.page, self.base = page, base
        self.ids: list[str] = []
        page.on("websocket", self._opened)

    def _opened(self, socket) -> None:
        found = re.search(r"/api/kernels/([0-9a-f-]+)/channels", socket.url)
        if found and found.group(1) not in self.ids:
            self.ids.append(found.group(1))

    def state(self, kernel_id: str | None = None) -> str | None:
        """The execution state of ``kernel_id``, by default the page's latest kernel (None
        when there is none, or the server does not know it)."""
        kernel_id = kernel_id or (self.ids[-1] if self.ids else None)
        if kernel_id is None:
            return None
        answer = self.page.request.get(f"{self.base}/api/kernels/{kernel_id}")
        return answer.json()["execution_state"] if answer.ok else None

    def wait_quiet(self, quiet_s: float = 1.0, timeout_s: float = CHANGE_S) -> None:
        """Wait until the kernel is idle and has sent nothing for ``quiet_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            if self.ids:
                kernel = self.page.request.get(f"{self.base}/api/kernels/{self.ids[-1]}").json()
                now = (kernel["execution_state"], kernel["last_activity"])
                if now != last:
                    last, since = now, time.monotonic()
                elif now[0] == "idle" and time.monotonic() - since >= quiet_s:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"the kernel did not settle in {timeout_s:.0f} s (last: {last})")


# ----------------------------------------------------------------------------- dashboards


def dashboard(page, marker: str):
    """The outermost widget box that holds an Output widget and the text ``marker``."""
    return (
        page.locator(".widget-vbox")
        .filter(has=page.locator(".widget-output"))
        .filter(has_text=marker)
        .first
    )


def plot(board):
    """The dashboard's figure: the last image in its Output widget."""
    return board.locator(".widget-output img").last


def slider(board, description: str):
    """The slider whose label reads exactly ``description``."""
    label = board.page.locator("label.widget-label").filter(has_text=_exactly(description))
    return board.locator(".widget-slider").filter(has=label).first


def _exactly(text: str) -> re.Pattern:
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


def nudge(control, key: str) -> str:
    """Focus the slider's handle and press ``key``; return the readout before."""
    before = control.locator(".widget-readout").inner_text()
    handle = control.locator(".noUi-handle").first
    handle.focus()
    handle.press(key)
    return before


def redrawn(board, before: str, timeout_s: float = CHANGE_S) -> str:
    """Wait until the dashboard's figure differs from ``before``; return the new source."""
    from playwright.sync_api import expect

    image = plot(board)
    expect(image).not_to_have_attribute("src", before, timeout=timeout_s * 1000)
    src = image.get_attribute("src")
    assert src.startswith("data:image/png;base64,"), src[:80]
    return src


# The kernel a Voilà page runs on, from the page configuration in its head.
PAGE_KERNEL_ID = """() => {
    const config = document.getElementById("jupyter-config-data");
    return config ? JSON.parse(config.textContent).kernelId : null;
}"""


def open_voila_page(page, url: str, kernel: KernelWatch, name: str):
    """``page.goto(url)``, reloading once in one known upstream failure only.

    Voilà streams the page while its notebook client executes the notebook. On the loaded
    2-core CI machine, about one load in ten never finished: every cell had run and the
    kernel was idle, but the server's asyncio task was still in nbclient's
    ``_async_poll_for_reply``, awaiting ``shell_channel.get_msg`` for an execute_reply it
    never saw (found by dumping the server's asyncio tasks; the same with ipykernel 6.31
    and 7.4). A lecturer reloads such a page; so does this test, once, and only in that
    state: a page whose kernel is still busy, or that hangs twice, fails.
    """
    from playwright.sync_api import TimeoutError as PageTimeout

    try:
        return page.goto(url, timeout=PAGE_S * 1000)
    except PageTimeout:
        # The page head, sent before any cell runs, names the kernel (the browser may not
        # have connected to it yet).
        kernel_id = page.evaluate(PAGE_KERNEL_ID)
        state = kernel.state(kernel_id)
        print(f"{name}: not loaded after {PAGE_S} s; its kernel {kernel_id} is {state}")
        if state != "idle":
            raise
        print(f"{name}: reloading once")
        return page.goto(url, timeout=PAGE_S * 1000)
