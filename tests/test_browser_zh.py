"""The Chinese edition in a real browser: one dashboard under Voilà (``lecture/zh/``) and
one slide deck (``python -m mamllib.tools.slides --lang zh``) show Chinese labels, drawn
with Chinese glyphs, not the boxes a browser draws when no font has them.

How a box is told from a glyph: every character a font lacks is drawn as the same box
(the font's .notdef glyph), so the characters of a label, each drawn alone in the label's
own font and screenshot, must give as many different pictures as there are different
characters; and the label must not look like a string of code points no font has
(U+10FFFD, certain to be boxes). Both fail without a CJK font (.ci/run installs
fonts-noto-cjk).
"""

import hashlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from browser import (
    PAGE_S,
    ROOT,
    KernelWatch,
    OfflineGuard,
    artifacts_dir,
    chromium,
    dashboard,
    free_port,
    in_ci,
    is_local,
    jupyter_env,
    open_voila_page,
    plot,
    require_browser,
    running_server,
    slider,
)

from mamllib.i18n import catalog
from mamllib.paths import NOTEBOOKS
from mamllib.tools import slides

ZH = catalog("zh")
SCREEN = {"width": 1280, "height": 720}
NO_GLYPH = chr(0x10FFFD)  # a private-use code point of plane 16: no font draws it
# Each character of `text` alone, and a box string as long, in the font of element `el`,
# large, black on white, in spans of their own at the page's top left.
SPECIMENS = """([el, text, noGlyph]) => {
    const style = getComputedStyle(el);
    const holder = document.createElement('div');
    holder.id = 'glyph-specimens';
    holder.style.cssText = 'position:fixed;left:0;top:0;z-index:100000;background:white;padding:4px';
    const chars = [...new Set([...text].filter(c => c.trim()))];
    for (const [i, piece] of [...chars, noGlyph, text].entries()) {
        const span = document.createElement('span');
        span.className = 'glyph-specimen';
        span.textContent = piece;
        span.style.cssText = `font-family:${style.fontFamily};font-weight:${style.fontWeight};` +
            'font-size:40px;line-height:48px;color:black;background:white;display:inline-block;' +
            'padding:2px;margin:2px';
        holder.appendChild(span);
    }
    document.body.appendChild(holder);
    return chars;
}"""


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def assert_glyphs(page, element, name: str) -> None:
    """``element``'s Chinese text is drawn with glyphs: see the module's docstring."""
    text = element.inner_text().strip()
    assert _has_chinese(text), f"{name}: no Chinese in {text!r}"
    chars = page.evaluate(SPECIMENS, [element.element_handle(), text, NO_GLYPH])
    spans = page.locator("#glyph-specimens .glyph-specimen")
    pictures = [hashlib.sha256(spans.nth(i).screenshot()).hexdigest() for i in range(len(chars))]
    boxes = spans.nth(len(chars)).screenshot()
    page.locator("#glyph-specimens").screenshot(path=artifacts_dir() / f"zh_glyphs_{name}.png")
    page.evaluate("document.getElementById('glyph-specimens').remove()")
    same = len(chars) - len(set(pictures))
    assert not same, (
        f"{name}: {same} of the {len(chars)} characters of {text!r} look alike: boxes, not "
        "glyphs (install a CJK font: apt install fonts-noto-cjk)"
    )
    assert hashlib.sha256(boxes).hexdigest() not in pictures, f"{name}: a character is a box"


@pytest.fixture(scope="module")
def browser():
    require_browser()
    with chromium() as browser:
        yield browser


@contextmanager
def _voila(target: str, tmp) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "mamllib.tools.lecture", "--lang", "zh", target, "--no-browser",
            f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0"]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with running_server(args, env=jupyter_env(tmp), cwd=ROOT, log=tmp / "voila.log",
                        probe=f"{base}/voila/static/extension.js") as server:  # fmt: skip
        try:
            yield base
        except Exception:
            print(server.log_tail())
            raise


@pytest.mark.browser
@pytest.mark.slow
def test_chinese_sinusoid_dashboard_under_voila(browser, tmp_path):
    marker = ZH["Adapt at test time"]
    with _voila("lecture/zh/01_sinusoid.ipynb", tmp_path) as base:
        page = browser.new_page(viewport=SCREEN)
        try:
            guard, kernel = OfflineGuard(page), KernelWatch(page, base)
            open_voila_page(page, base + "/", kernel, "zh 01_sinusoid")
            board = dashboard(page, marker)
            plot(board).wait_for(timeout=PAGE_S * 1000)
            page.screenshot(path=artifacts_dir() / "voila_zh_01_sinusoid.png")
            # the picture a Chinese deck can show (figures/screenshots/zh/, slides --lang zh)
            board.screenshot(path=artifacts_dir() / "zh_dashboard_01_sinusoid.png")
            # the widgets' labels, the status table and the page's text are Chinese
            assert slider(board, ZH["α (inner lr)"]).count() == 1
            assert board.get_by_text(ZH["learner"], exact=True).count() >= 1
            assert board.get_by_text(ZH["label:pre-trained"], exact=True).count() >= 1
            title = board.locator("b", has_text=marker).first
            assert_glyphs(page, title, "voila_dashboard_title")
            assert_glyphs(page, board.locator("label.widget-label", has_text=ZH["inner steps"]).first,
                          "voila_slider_label")  # fmt: skip
            assert plot(board).evaluate("img => img.complete && img.naturalWidth > 0")
            elsewhere = [url for url in guard.requests if not is_local(url)]
            assert not elsewhere, f"requests for other machines: {elsewhere}"
        finally:
            page.close()


@pytest.mark.browser
@pytest.mark.slow
def test_chinese_deck_shows_chinese_glyphs(browser, tmp_path):
    source = NOTEBOOKS / "zh" / "01_sinusoid.ipynb"
    try:
        (deck,) = slides.build(tmp_path, [source], lang="zh")
    except slides.VendorError as exc:
        message = f"the slides' JavaScript libraries are not cached and cannot be fetched: {exc}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    assert _has_chinese(deck.title)
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert ZH["MAML course: slides"] in index and deck.title in index
    page = browser.new_page(viewport=SCREEN)
    try:
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:"))
                   else r.abort())  # fmt: skip
        page.goto(deck.path.as_uri())
        page.wait_for_function("document.querySelector('.reveal.ready') !== null", timeout=30_000)
        page.wait_for_timeout(800)  # the first slide's transition
        heading = page.locator("section.present h1").first
        assert deck.title.split(" · ")[-1] in heading.inner_text()
        page.screenshot(path=artifacts_dir() / "slides_zh_01_sinusoid.png")
        assert_glyphs(page, heading, "deck_title")
    finally:
        page.close()
