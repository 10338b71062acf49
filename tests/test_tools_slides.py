"""Slide decks (``python -m mamllib.tools.slides``): the metadata that makes them, and decks that
load nothing from the network — checked in the HTML and in a real browser from file://.

The decks are built once for this module, from the npm cache (``$MAMLLIB_CACHE``, filled
with ``npm pack`` the first time: the only time the network is used). Without npm or the
network the tests skip, and without Chromium or playwright the browser test skips,
unless ``CI`` is set: then they fail.
"""

import os
import re
import time
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from browser import in_ci

from mamllib.paths import ROOT
from mamllib.tools import slides
from mamllib.tools.course import select_notebooks

NOTEBOOKS = select_notebooks()
NOTEBOOKS_BY_NAME = {path.stem: path for path in NOTEBOOKS}
CI = in_ci()
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)  # http://, https://, //host, ...
URL_IN_CSS = re.compile(r"""url\(\s*['"]?([^'")]+?)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")
FIGURE = 'src="data:image/png;base64,'


def _skip_or_fail(reason):
    if CI:
        pytest.fail(reason + " (CI is set, so this fails rather than skips)")
    pytest.skip(reason)


def _slide_types(nb):
    return [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nb.cells]


def _pngs(cell):
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


# ----------------------------------------------------------------------------- the metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_slide_metadata(path):
    nb = nbformat.read(path, as_version=4)
    kinds = _slide_types(nb)
    allowed = {"slide", "subslide", "fragment", "-", "skip", "notes"}
    assert set(kinds) <= allowed, set(kinds) - allowed  # and every cell has one
    assert kinds[0] == "slide" and nb.cells[0].source.startswith("# ")  # the title slide
    setup = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code")
    assert kinds[setup] == "skip" and "import" in nb.cells[setup].source
    for cell, kind in zip(nb.cells, kinds):
        section = cell.cell_type == "markdown" and re.search(r"^## ", cell.source, re.M)
        assert (kind == "slide") == bool(section or cell is nb.cells[0]), cell.source[:80]
        if "solution" in cell.metadata.get("tags", []):
            assert kind == "skip"
        if _pngs(cell):
            assert kind not in {"skip", "notes"}, "a figure is left out of the slides"


# ----------------------------------------------------------------------------- the decks


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("slides")
    start = time.perf_counter()
    try:
        decks = slides.build(out)
    except slides.VendorError as exc:
        _skip_or_fail(
            f"the slides' JavaScript libraries are not cached and cannot be fetched: {exc}"
        )
    print(f"\nbuilt {len(decks)} decks in {time.perf_counter() - start:.1f} s")
    return out, {deck.name: deck for deck in decks}


class _Page(HTMLParser):
    """Every URL attribute, <script> and <style> body and style attribute of a page."""

    def __init__(self, text):
        super().__init__()
        self.urls, self.scripts, self.styles, self._open = [], [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "data", "poster", "action", "srcset"):
            if attrs.get(name) is not None:
                self.urls.append((tag, name, attrs[name]))
        if attrs.get("style"):
            self.styles.append(attrs["style"])
        self._open = tag if tag in ("script", "style") else None
        if tag == "script":
            self.scripts.append((attrs.get("type") or "", ""))
        elif tag == "style":
            self.styles.append("")

    def handle_data(self, data):
        if self._open == "script":
            kind, body = self.scripts[-1]
            self.scripts[-1] = (kind, body + data)
        elif self._open == "style":
            self.styles[-1] += data

    def handle_endtag(self, tag):
        self._open = None


def _without_comments(code):
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    return re.sub(r"^\s*//.*$", "", code, flags=re.M)  # a whole-line comment; not "https://"


def _local_file(base, url):
    """The file a relative URL names, or None for data: URLs and in-page anchors."""
    if url.startswith(("data:", "#")) or not url:
        return None
    assert not REMOTE.match(url) and not url.startswith("/"), f"not a relative URL: {url}"
    return (base / unquote(urlsplit(url).path)).resolve()


def _markdown(nb):
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def _text_links(nb):
    """The hyperlinks written in the notebook's markdown: the only remote URLs a deck may have."""
    text = _markdown(nb)
    return set(re.findall(r"\]\((https?://[^)\s]+)\)", text)) | set(
        re.findall(r"<(https?://[^>\s]+)>", text)
    )


def _check_css(css, base, seen):
    """No remote url()/@import in ``css`` (relative to ``base``), recursively; files exist."""
    css = _without_comments(css)
    assert not re.search(r"https?://", css), re.search(r".{60}https?://.{60}", css)
    for match in URL_IN_CSS.finditer(css):
        path = _local_file(base, match.group(1) or match.group(2))
        if path is None or path in seen:
            continue
        assert path.is_file(), f"{path} is referenced but missing"
        seen.add(path)
        if path.suffix == ".css":
            _check_css(path.read_text(encoding="utf-8"), path.parent, seen)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_deck_references_nothing_remote_and_every_local_file_exists(built, path):
    out, decks = built
    deck = decks[path.stem]
    page = _Page(deck.path.read_text(encoding="utf-8"))
    links = _text_links(nbformat.read(path, as_version=4))
    seen = set()
    for tag, attr, url in page.urls:
        if tag == "a" and REMOTE.match(url):
            assert url in links, f"<a href={url}> is not a link from the notebook's text"
            continue
        assert not REMOTE.match(url), f"<{tag} {attr}={url}> loads from the network"
        local = _local_file(out, url)
        if local is not None:
            assert local.is_relative_to(out.resolve()) and local.is_file(), (
                f"<{tag} {attr}={url}>: no such file"
            )
            seen.add(local)
            if local.suffix == ".css":
                _check_css(local.read_text(encoding="utf-8"), local.parent, seen)
    for kind, body in page.scripts:
        code = _without_comments(body)
        assert not re.search(r"https?://|['\"]//", code), (
            f"a <script type={kind!r}> has a remote URL"
        )
        for url in re.findall(r"""['"]([\w./-]+\.(?:js|css))['"]""", code):  # e.g. require([...])
            local = _local_file(out, url)
            assert local.is_file(), f"the script loads {url}: no such file"
            seen.add(local)
    for css in page.styles:
        _check_css(css, out, seen)
    vendored = {p for p in seen if "vendor" in p.parts}
    for name in (
        "reveal.js",
        "reveal.css",
        "require.js",
        "jquery.min.js",
        "MathJax.js",
        f"{slides.THEME}.css",
    ):
        assert any(p.name == name for p in vendored), f"the deck does not load the vendored {name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_deck_has_a_title_slide_every_figure_and_the_dashboard_as_a_picture(built, path):
    out, decks = built
    deck, nb = decks[path.stem], nbformat.read(path, as_version=4)
    html = deck.path.read_text(encoding="utf-8")
    slides_html = html.split('<div class="slides">', 1)[1]
    first = slides_html.split("<section", 2)[1:3]  # the first slide and its first subslide
    assert (
        deck.title and escape(deck.title, quote=False) in "".join(first) and "<h1" in "".join(first)
    )
    figures = [
        out.get("data", {})["image/png"]
        for cell, kind in zip(nb.cells, _slide_types(nb))
        if kind != "skip" and "solution" not in cell.metadata.get("tags", [])
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]
    assert figures and all(png.strip() in html for png in figures)
    widgets = sum(
        slides.WIDGET in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", [])
    )
    picture = slides.dashboard_screenshot(path.stem)
    if widgets:
        assert picture.is_file(), f"{picture}: the deck shows this in place of the dashboard"
        assert html.count(FIGURE) == len(figures) + widgets
    assert deck.slides >= 8 and deck.subslides >= deck.slides


def test_lecture_rules_on_a_small_notebook():
    """Code hidden unless tagged, text outputs and long prose to the notes, a widget as its
    picture, a figure on a slide of its own, exercises as titles without their code."""
    v4 = nbformat.v4
    long = "This paragraph says a great deal, " * 6 + "and ends here."
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_markdown_cell("# A title\n\n**What you will learn**\n- one\n- two"),
        v4.new_code_cell("print('hello')", outputs=[v4.new_output("stream", text="a table\n")]),
        v4.new_markdown_cell(f"## 1. A section\n\n{long}\n\n**The point.** It is short. {long}\n\n- {'word ' * 28}"),
        v4.new_code_cell("x = 1", outputs=[v4.new_output("display_data", data={"image/png": "UE5H"})]),
        v4.new_code_cell("shown()", metadata={"tags": [slides.SLIDE_CODE]}),
        v4.new_code_cell("board", outputs=[v4.new_output("display_data", data={
            slides.WIDGET: {"model_id": "x"}, "text/plain": "VBox(children=(HBox(...),))"})]),
        v4.new_markdown_cell("## Exercises\n\nThe solutions are in the cells tagged `solution`.\n\n"
                             f"**1. Do it.** {long}"),
        v4.new_code_cell("check(mine)", outputs=[v4.new_output("stream", text="✓ matches\n")]),
    ]  # fmt: skip
    lecture = slides.lecture_notebook(nb, "01_sinusoid")
    kinds = [cell.metadata.slideshow.slide_type for cell in lecture.cells]
    shown = [c for c, k in zip(lecture.cells, kinds) if k != "notes"]
    notes = "\n".join(c.source for c, k in zip(lecture.cells, kinds) if k == "notes")
    text = "\n".join(c.source for c in shown)
    assert shown[0].source == "# A title" and kinds[0] == "slide"
    assert "What you will learn" in text and "- two" in text
    assert "print('hello')" not in text and "a table" in notes and "a table" not in text
    assert long not in text and long in notes and "### The point." in text
    assert "shown()" in text and "x = 1" not in text
    assert not any("VBox(" in str(c.get("outputs", "")) for c in lecture.cells)
    pictures = [o for c in shown for o in c.get("outputs", []) if "image/png" in o["data"]]
    assert len(pictures) == 2 and pictures[1]["data"]["image/png"] != "UE5H"  # the screenshot
    figure = next(
        c for c in shown if c.get("outputs") and c.outputs[0]["data"]["image/png"] == "UE5H"
    )
    assert figure.metadata.slideshow.slide_type == "subslide"  # after a paragraph of text
    assert "- **1. Do it.**" in text and "check(mine)" not in text + notes
    assert "solution" not in text + notes


def test_a_long_list_goes_on_under_its_heading_and_long_items_are_cut():
    v4 = nbformat.v4
    point = "A point that takes a whole line to make, and then a few more words to say"
    item = f"- {point}; " + "and more words " * 8
    nb = v4.new_notebook()
    nb.cells = [v4.new_markdown_cell("## Summary\n\n" + "\n".join([item] * 8))]
    nb.cells[0].metadata["slideshow"] = {"slide_type": "slide"}
    lecture = slides.lecture_notebook(nb, "no-such-chapter")
    shown = [c for c in lecture.cells if c.metadata.slideshow.slide_type != "notes"]
    assert [c.source for c in shown if c.source.startswith("#")] == [
        "## Summary",
        "### Summary (continued)",
    ]
    lists = [c.source for c in shown if c.source.startswith("-")]
    assert len(lists) == 2 and sum(len(x.splitlines()) for x in lists) == 8
    assert all(line == f"- {point} …" for x in lists for line in x.splitlines())
    notes = [c.source for c in lecture.cells if c.metadata.slideshow.slide_type == "notes"]
    assert len(notes) == 1 and notes[0].split() == (item * 8).split()  # the whole list


def test_chinese_prose_counts_two_characters_a_word_and_keeps_the_same_rules():
    v4 = nbformat.v4
    long = "这一段话说了很多内容，" * 8 + "到这里结束。"  # 85 characters, 43 words
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_markdown_cell(f"## 1. 一节\n\n{long}\n\n**要点。** 很短。{long}"),
        v4.new_markdown_cell("## 练习\n\n解答在标记为 `solution` 的单元格里。\n\n**1. 做一做。** 相加。"),
        v4.new_code_cell("check(mine)"),
    ]  # fmt: skip
    assert slides._words(long) == 43 and slides._words("MAML 的 θ") == 3
    lecture = slides.lecture_notebook(nb, "no-such-chapter", lang="zh")
    kinds = [cell.metadata.slideshow.slide_type for cell in lecture.cells]
    text = "\n".join(c.source for c, k in zip(lecture.cells, kinds) if k != "notes")
    notes = "\n".join(c.source for c, k in zip(lecture.cells, kinds) if k == "notes")
    assert long not in text and long in notes and "### 要点。" in text
    assert "- **1. 做一做。**" in text and "解答" not in text + notes and "check(mine)" not in text


def test_the_chinese_index_and_continued_headings(tmp_path):
    deck = slides.Deck("01_a", "1 · 正弦", tmp_path / "01_a.slides.html", 3, 9)
    index = slides.write_index([deck], tmp_path, lang="zh").read_text(encoding="utf-8")
    assert '<html lang="zh">' in index and "MAML 课程：幻灯片" in index and "1 · 正弦" in index
    assert "voila lecture/zh/" in index and "--lang zh" in index
    item = "- " + "这一项要用一整行来说明，然后再多说几句话" * 3
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## 小结\n\n" + "\n".join([item] * 8))]
    lecture = slides.lecture_notebook(nb, "no-such-chapter", lang="zh")
    assert any(c.source == "### 小结（续）" for c in lecture.cells)


def test_index_links_every_deck(built):
    out, decks = built
    index = (out / "index.html").read_text(encoding="utf-8")
    page = _Page(index)
    assert not page.scripts and not any(REMOTE.match(url) for _, _, url in page.urls)
    for deck in decks.values():
        assert f'href="{deck.path.name}"' in index and escape(deck.title, quote=False) in index


def test_unknown_notebook_is_named_with_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit_info:
        slides.main(["01_sinusoid", "9_nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'9_nope'" in err and all(path.stem in err for path in NOTEBOOKS)


def test_missing_npm_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(slides.shutil, "which", lambda name: None)
    with pytest.raises(slides.VendorError, match=r"npm is not installed.*npm pack reveal\.js@"):
        slides.fetch(tmp_path / "empty-cache")


# ----------------------------------------------------------------------------- in a browser

LOCAL = ("file:", "data:", "blob:")
# Wait for reveal.js and MathJax, then go to the first slide with a figure, all its fragments shown.
SHOW_FIGURE = """reveal => new Promise(done => require([reveal], Reveal => MathJax.Hub.Queue(() => {
    const img = document.querySelector('.slides img[src^="data:image/png"]');
    const at = Reveal.getIndices(img.closest('section'));
    Reveal.slide(at.h, at.v, Number.MAX_VALUE);
    done({ready: Reveal.isReady(), total: Reveal.getTotalSlides(), at, mathjax: MathJax.isReady,
          math: document.querySelectorAll('.mjx-chtml').length});
})))"""


def _chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail(
            "playwright is not installed (pip install playwright; never `playwright install`)"
        )
    if not Path(CHROMIUM).is_file():
        _skip_or_fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return sync_playwright


def _show(browser, deck, screenshot):
    """Open ``deck`` from disk with every non-local request aborted; what happened."""
    seen = {"network": [], "failed": [], "errors": []}

    def route(request_route):
        if request_route.request.url.startswith(LOCAL):
            request_route.continue_()
        else:
            seen["network"].append(request_route.request.url)
            request_route.abort()

    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        context.route("**/*", route)
        page = context.new_page()
        page.on("request", lambda r: r.url.startswith(LOCAL) or seen["network"].append(r.url))
        page.on("requestfailed", lambda r: seen["failed"].append(f"{r.url}: {r.failure}"))
        page.on("pageerror", lambda error: seen["errors"].append(str(error)))
        page.goto(deck.path.as_uri())
        page.wait_for_function("document.querySelector('.reveal.ready') !== null", timeout=30_000)
        reveal = f"vendor/{slides.PACKAGES['reveal.js'].folder}/dist/reveal.js"
        seen.update(page.evaluate(SHOW_FIGURE, reveal))
        page.wait_for_timeout(800)  # the slide transition
        figure = page.locator('section.present img[src^="data:image/png"]').first
        figure.scroll_into_view_if_needed()  # long slides scroll
        seen["box"] = figure.bounding_box()
        seen["loaded"] = figure.evaluate("img => img.complete && img.naturalWidth > 0")
        page.screenshot(path=str(screenshot))
    finally:
        context.close()
    return seen


def test_decks_show_offline_in_chromium(built):
    sync_playwright = _chromium()
    _, decks = built
    artifacts = Path(os.environ.get("MAMLLIB_ARTIFACTS") or ROOT / "build" / "screenshots")
    artifacts.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            shown = {
                name: _show(browser, deck, artifacts / f"slides_{name}.png")
                for name, deck in decks.items()
            }
        finally:
            browser.close()
    seconds = time.perf_counter() - start
    print(f"\n{len(decks)} decks shown in Chromium in {seconds:.1f} s; screenshots in {artifacts}")
    for name, seen in shown.items():
        markdown = _markdown(nbformat.read(NOTEBOOKS_BY_NAME[name], as_version=4))
        assert not seen["network"], f"{name}: requests to the network: {seen['network']}"
        assert not seen["failed"], f"{name}: failed to load: {seen['failed']}"
        assert not seen["errors"], f"{name}: errors on the page: {seen['errors']}"
        assert seen["ready"] and seen["total"] == decks[name].subslides, seen
        assert seen["mathjax"], f"{name}: MathJax did not load"
        assert seen["math"] > 0 or "$" not in markdown, f"{name}: no formula typeset"
        box = seen["box"]
        assert seen["loaded"] and box["width"] > 200 and box["height"] > 100, seen
        assert 0 <= box["y"] < 720 and box["x"] >= 0, f"{name}: the figure is off screen: {box}"


# Every slide, all its fragments shown: what sticks out of the slide, and any widget's text.
WALK = r"""async reveal => {
    const Reveal = await new Promise(done => require([reveal], done));
    Reveal.configure({transition: 'none', backgroundTransition: 'none'});
    const widget = /\b(?:VBox|HBox|IntSlider|FloatSlider|FloatLogSlider|ToggleButtons|Button|Output|Play|Dropdown|Layout)\(/;
    const frame = document.querySelector('.reveal .slides');
    const seen = [];
    for (const [h, column] of Reveal.getHorizontalSlides().entries()) {
        const rows = Math.max(column.querySelectorAll(':scope > section').length, 1);
        for (let v = 0; v < rows; v++) {
            Reveal.slide(h, v, Number.MAX_VALUE);
            await new Promise(done => MathJax.Hub.Queue(() => setTimeout(done, 50)));
            await new Promise(done => MathJax.Hub.Queue(done));  // and the slide's fitting
            const slide = Reveal.getCurrentSlide(), box = frame.getBoundingClientRect();
            const out = [];
            for (const el of slide.querySelectorAll('*')) {
                const r = el.getBoundingClientRect();
                if (el.closest('aside.notes') || r.width === 0 || r.height === 0) continue;
                if (r.bottom > box.bottom + 1 || r.right > box.right + 1 ||
                    r.top < box.top - 1 || r.left < box.left - 1)
                    out.push(`<${el.tagName.toLowerCase()} class="${el.className}"> at ` +
                             `${[r.left, r.top, r.right, r.bottom].map(Math.round)}`);
            }
            const text = slide.innerText.replace(/\s+/g, ' ');
            seen.push({at: `${h}/${v}`, text: text.slice(0, 60), out: out.slice(0, 3),
                       widget: (text.match(widget) || [null])[0], fitted: slide.dataset.fitted,
                       scale: Reveal.getScale()});
        }
    }
    return {frame: frame.getBoundingClientRect().toJSON(), seen};
}"""


def _walk(browser, deck):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        page.route(
            "**/*", lambda r: r.continue_() if r.request.url.startswith(LOCAL) else r.abort()
        )
        page.goto(deck.path.as_uri())
        page.wait_for_function("document.querySelector('.reveal.ready') !== null", timeout=30_000)
        reveal = f"vendor/{slides.PACKAGES['reveal.js'].folder}/dist/reveal.js"
        return page.evaluate(WALK, reveal)
    finally:
        page.close()


def check_every_slide_fits(browser, decks) -> list[str]:
    """What is wrong with the decks at 1280×720: one line per slide that overflows or shows a
    widget's text, or a deck whose slides are not all visited."""
    problems = []
    for name, deck in decks.items():
        walked = _walk(browser, deck)
        if len(walked["seen"]) != deck.subslides:
            problems.append(f"{name}: visited {len(walked['seen'])} of {deck.subslides} slides")
        for slide in walked["seen"]:
            where = f"{name} slide {slide['at']} ({slide['text']!r})"
            if slide["out"]:
                problems.append(f"{where} overflows: {slide['out']}")
            if slide["widget"]:
                problems.append(f"{where} shows a widget's text: {slide['widget']}")
    return problems


def test_every_slide_fits_at_720p_and_shows_no_widget_text(built):
    """At 1280×720 every slide of every deck, its fragments shown, lies inside the slide, and
    no slide shows the text a widget leaves on a static page (``VBox(children=...``)."""
    sync_playwright = _chromium()
    _, decks = built
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            problems = check_every_slide_fits(browser, decks)
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
