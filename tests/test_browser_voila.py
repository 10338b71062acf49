"""Lecture mode: the dashboards of ``lecture/`` under Voilà, in a real browser, offline.

The lecturer's two commands, run from the repository root (where ``voila.json`` is
read): ``python -m mamllib.tools.lecture lecture/01_sinusoid.ipynb`` serves one
dashboard, ``python -m mamllib.tools.lecture`` serves the folder, its home page listing
the chapters by title. For each notebook, at a projector's 1280×720: the dashboard is on
the first screen, the instructions below it; a slider moved with the keyboard (and the
order toggle, where there is one) redraws the plot; and the page requests nothing from
any machine but this one (not even what its Content-Security-Policy would refuse).
"""

import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from browser import (
    PAGE_S,
    ROOT,
    KernelWatch,
    OfflineGuard,
    Server,
    artifacts_dir,
    chromium,
    dashboard,
    free_port,
    is_local,
    jupyter_env,
    nudge,
    open_voila_page,
    plot,
    redrawn,
    require_browser,
    running_server,
    slider,
)

from mamllib.tools import lecture

LECTURE = ROOT / "lecture"
SCREEN = {"width": 1280, "height": 720}  # a projector
DASHBOARDS = {
    "01_sinusoid.ipynb": "SinusoidDashboard",
    "02_omniglot.ipynb": "OmniglotDashboard",
    "03_rl_navigation.ipynb": "NavigationDashboard",
}
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
ERROR = re.compile(r"Traceback|Error")


def test_lecture_notebooks_are_committed_clean():
    """Outputs cleared, metadata stripped but the kernelspec, each one chapter's dashboard."""
    assert sorted(p.name for p in LECTURE.glob("*.ipynb")) == sorted(DASHBOARDS)
    for name, dashboard_class in DASHBOARDS.items():
        notebook = json.loads((LECTURE / name).read_text())
        assert notebook["metadata"] == {"kernelspec": KERNELSPEC}, name
        code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), name
        assert all(cell["metadata"] == {} for cell in notebook["cells"]), name
        assert sum(dashboard_class in "".join(c["source"]) for c in code) == 1, name


def test_lecture_notebooks_put_the_dashboard_first_and_link_each_other():
    """Title, a contents line linking the other dashboards, the dashboard, then the text."""
    for name in DASHBOARDS:
        cells = json.loads((LECTURE / name).read_text())["cells"]
        title, contents, board, *text = ("".join(c["source"]) for c in cells)
        assert title.startswith("# ") and "\n" not in title, name
        links = set(re.findall(r"\]\(([^)]+)\)", contents))
        assert links == set(DASHBOARDS) - {name}, (name, links)
        assert cells[2]["cell_type"] == "code" and "dashboard.show()" in board, name
        assert "Try with the class" in "".join(text), name


@contextmanager
def _voila(target: str, tmp) -> Iterator[tuple[str, Server]]:
    """``voila <target>`` run from the repository root: (base URL, server).

    The readiness probe asks for a path that renders nothing (Voilà answers it 403): for a
    single notebook, ``/`` would render it, starting a second kernel beside the browser's."""
    port = free_port()
    args = [sys.executable, "-m", "mamllib.tools.lecture", target, "--no-browser", f"--port={port}",
            "--Voila.ip=127.0.0.1", "--Voila.port_retries=0"]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with running_server(args, env=jupyter_env(tmp), cwd=ROOT, log=tmp / "voila.log",
                        probe=f"{base}/voila/static/extension.js") as server:  # fmt: skip
        yield base, server


@pytest.fixture(scope="module")
def browser():
    require_browser()
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def folder(browser, tmp_path_factory):
    """``voila lecture/``: (base URL, server)."""
    with _voila("lecture", tmp_path_factory.mktemp("voila-folder")) as served:
        yield served


def _drive(browser, server: Server, base: str, path: str, name: str, *, marker: str,
           moves: list[tuple[str, str]], toggle: bool) -> None:  # fmt: skip
    """Open ``base + path``, wait for the dashboard and for its kernel to settle, press
    each ``(slider label, key)`` of ``moves`` in turn (then switch the order), check that
    the plot follows each change and that nothing was fetched from elsewhere; screenshot.
    On a failure: a screenshot ``voila_<name>_failed.png`` and the server's log."""
    page = browser.new_page(viewport=SCREEN)
    started = time.monotonic()
    try:
        guard, kernel = OfflineGuard(page), KernelWatch(page, base)
        response = open_voila_page(page, base + path, kernel, name)
        assert "default-src 'self'" in response.headers.get("content-security-policy", ""), (
            "voila.json's Content-Security-Policy was not applied (run from the repository root)"
        )
        board = dashboard(page, marker)
        error = page.locator('[data-mime-type="application/vnd.jupyter.stderr"]', has_text=ERROR)
        plot(board).or_(error).first.wait_for(timeout=PAGE_S * 1000)
        assert not error.count(), error.first.inner_text()
        src = plot(board).get_attribute("src")
        kernel.wait_quiet()
        assert plot(board).get_attribute("src") == src, (
            "the dashboard redrew by itself once shown (did a slider send back its value?)"
        )
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=artifacts_dir() / f"voila_{name}_first_screen.png")
        top = board.bounding_box()
        assert top["y"] < SCREEN["height"] / 3 and top["height"] > SCREEN["height"] / 3, (
            f"the dashboard is not on the first screen at 1280×720: {top}"
        )
        howto = page.get_by_text("Try with the class").first.bounding_box()
        assert howto["y"] > top["y"] + top["height"] - 1, "the instructions are above the dashboard"
        board.screenshot(path=artifacts_dir() / f"dashboard_{name}.png")

        for control, key in moves:
            moved = slider(board, control)
            readout = nudge(moved, key)
            src = redrawn(board, src)
            kernel.wait_quiet()
            assert moved.locator(".widget-readout").inner_text() != readout, control

        if toggle:
            first_order = board.locator(".widget-toggle-button", has_text="first-order")
            first_order.click()
            src = redrawn(board, src)
            kernel.wait_quiet()
            assert "mod-active" in first_order.get_attribute("class")

        page.screenshot(path=artifacts_dir() / f"voila_{name}.png", full_page=True)
        elsewhere = [url for url in guard.requests if not is_local(url)]
        assert not elsewhere, f"requests for other machines (CSP-refused or not): {elsewhere}"
    except Exception:
        page.screenshot(path=artifacts_dir() / f"voila_{name}_failed.png")
        print(f"{name}: failed after {time.monotonic() - started:.0f} s; server log:")
        print(server.log_tail())
        raise
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.slow
def test_sinusoid_dashboard_from_one_file(browser, tmp_path):
    with _voila(str(LECTURE / "01_sinusoid.ipynb"), tmp_path) as (base, server):
        _drive(browser, server, base, "/", "01_sinusoid", marker="Adapt at test time",
               moves=[("α (inner lr)", "ArrowRight"), ("inner steps", "ArrowLeft")], toggle=True)  # fmt: skip


@pytest.mark.browser
@pytest.mark.slow
def test_home_page_lists_the_chapters_by_title(browser, folder):
    base, _ = folder
    page = browser.new_page(viewport=SCREEN)
    try:
        guard = OfflineGuard(page)
        page.goto(f"{base}/", timeout=PAGE_S * 1000)
        links = page.locator("ul.voila-notebooks a")
        links.first.wait_for(timeout=30_000)
        shown = {a.get_attribute("href"): a.inner_text().strip() for a in links.all()}
        chapters = {f"/voila/render/{name}": title for name, title in lecture.titles().items()}
        others = {f"/voila/tree/{name}": text for name, text in lecture.editions().items()}
        assert shown == {**chapters, **others} and "/voila/tree/zh" in others
        assert len(set(chapters.values())) == len(DASHBOARDS) and not any(
            text.endswith(".ipynb") for text in shown.values()
        ), shown
        elsewhere = [url for url in guard.requests if not is_local(url)]
        assert not elsewhere, f"requests for other machines (CSP-refused or not): {elsewhere}"
    finally:
        page.close()


def test_chapter_titles_come_from_the_notebooks_headings():
    found = lecture.titles()
    assert sorted(found) == sorted(DASHBOARDS)
    assert all(title.split(" · ")[0] == name[1] for name, title in found.items()), found


@pytest.mark.browser
@pytest.mark.slow
def test_omniglot_dashboard(browser, folder):
    base, server = folder
    _drive(browser, server, base, "/voila/render/02_omniglot.ipynb", "02_omniglot",
           marker="Adapt at test time", moves=[("α (inner lr)", "ArrowRight"), ("inner steps S", "ArrowLeft")],
           toggle=True)  # fmt: skip


@pytest.mark.browser
@pytest.mark.slow
def test_navigation_dashboard(browser, folder):
    base, server = folder
    _drive(browser, server, base, "/voila/render/03_rl_navigation.ipynb", "03_rl_navigation",
           marker="adaptation", moves=[("α step 1", "ArrowRight"), ("steps", "ArrowLeft"), ("goal x", "ArrowRight")],
           toggle=False)  # fmt: skip
