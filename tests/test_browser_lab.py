"""Notebook 1 in JupyterLab, in a real browser: run every cell, then drive the dashboard.

A student's path: open the notebook, Run ▸ Run All Cells, then move the α and
inner-steps sliders with the keyboard and switch MAML's order; after each change the
kernel computes and the MAML prediction plot must change. The notebook runs from a
copy in a temporary directory, so Lab can never write to the committed one.
"""

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from browser import (
    CHANGE_S,
    PAGE_S,
    ROOT,
    KernelWatch,
    OfflineGuard,
    artifacts_dir,
    chromium,
    dashboard,
    free_port,
    jupyter_env,
    new_token,
    nudge,
    plot,
    redrawn,
    require_browser,
    running_server,
    slider,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "01_sinusoid.ipynb"
RUN_ALL_S = 300  # all of notebook 1 in fast mode: about 30 s alone on the 2-core CPU
# User settings of the private Lab: every cell rendered (not only those in view), no
# autosave, no announcements or update checks (no network).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
# Done: every code cell has an execution count and the kernel is idle. Stopped: the
# kernel is idle with cells left unrun (after an error Lab drops the queue).
RUN_ALL_STATE = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
        .map(p => p.textContent);
    const idle = /\\bIdle\\b/.test(document.querySelector('#jp-main-statusbar')?.innerText ?? '');
    const ran = prompts.filter(p => /\\[\\d+\\]/.test(p)).length;
    if (!idle || ran === 0 || prompts.some(p => p.includes('*'))) return false;
    return ran === prompts.length ? 'done' : `stopped after ${ran} of ${prompts.length} code cells`;
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A private JupyterLab serving a copy of notebook 1: (base URL, token, server)."""
    require_browser()
    tmp = tmp_path_factory.mktemp("lab")
    notebooks = tmp / "notebooks"
    notebooks.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, notebooks)
    env = jupyter_env(tmp)
    for plugin, settings in LAB_SETTINGS.items():
        path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    port, token = free_port(), new_token()
    args = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebooks}",
            "--LabApp.news_url=None"]  # fmt: skip
    if os.geteuid() == 0:  # CI containers run as root
        args.append("--allow-root")
    base = f"http://127.0.0.1:{port}"
    with running_server(args, env=env, cwd=notebooks, log=tmp / "lab.log",
                        probe=f"{base}/api/status?token={token}") as server:  # fmt: skip
        yield base, token, server


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}$")).click()


def test_run_all_then_drive_the_sinusoid_dashboard(lab):
    base, token, server = lab
    shots = artifacts_dir()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            _run_all_and_drive(page, base, token)
        except Exception:
            page.screenshot(path=shots / "lab_01_sinusoid_failed.png")
            print(f"server log:\n{server.log_tail()}")
            raise
        page.screenshot(path=shots / "lab_01_sinusoid.png")


def _run_all_and_drive(page, base: str, token: str) -> None:
    guard, kernel = OfflineGuard(page), KernelWatch(page, base)
    page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}", timeout=PAGE_S * 1000)
    page.locator("#jp-main-statusbar", has_text="Idle").wait_for(timeout=PAGE_S * 1000)

    started = time.monotonic()
    _menu(page, "Edit", "Clear Outputs of All Cells")  # so that every [n] below is new
    _menu(page, "Run", "Run All Cells")
    state = page.wait_for_function(RUN_ALL_STATE, timeout=RUN_ALL_S * 1000).json_value()
    print(f"run all cells: {time.monotonic() - started:.1f} s")
    assert state == "done", f"Run All Cells {state} (an error?)"

    board = dashboard(page, "Adapt at test time")
    board.scroll_into_view_if_needed()
    plot(board).wait_for(timeout=CHANGE_S * 1000)
    kernel.wait_quiet()
    src = plot(board).get_attribute("src")

    alpha = slider(board, "α (inner lr)")
    readout = nudge(alpha, "ArrowRight")
    src = redrawn(board, src)
    kernel.wait_quiet()
    assert alpha.locator(".widget-readout").inner_text() != readout

    steps = slider(board, "inner steps")
    readout = nudge(steps, "ArrowLeft")
    src = redrawn(board, src)
    kernel.wait_quiet()
    assert steps.locator(".widget-readout").inner_text() == str(int(readout) - 1)

    first_order = board.locator(".widget-toggle-button", has_text="first-order")
    first_order.click()
    redrawn(board, src)
    kernel.wait_quiet()
    assert "mod-active" in first_order.get_attribute("class")
    assert "MAML (first-order)" in board.inner_text()

    board.scroll_into_view_if_needed()
    assert not guard.sent_elsewhere, f"requests to other machines: {guard.sent_elsewhere}"
