"""reveal.js slide decks of the notebooks that work offline, from disk.

    python -m mamllib.tools.slides     # build/slides/index.html and one deck per notebook
    python -m mamllib.tools.slides 01_sinusoid --out /tmp/slides
    python -m mamllib.tools.slides --lang zh   # the Chinese edition: notebooks/zh -> build/slides/zh

Each notebook becomes ``<out>/<name>.slides.html`` (nbconvert's ``SlidesExporter``; the
cells' ``metadata.slideshow.slide_type`` make the slides), and ``<out>/index.html`` lists
them. Open either straight from disk (``file://``): every URL in a deck is relative.

Nothing is loaded from the network when a deck is shown. reveal.js, require.js, jQuery,
MathJax 2 and the Jupyter widget renderer (with the font-awesome fonts it bundles) are
copied next to the decks, into ``<out>/vendor/``, from npm packages pinned in
``PACKAGES`` below. The packages are fetched once with ``npm pack`` into a cache folder
(``$MAMLLIB_CACHE/slides-vendor``, else ``.cache/slides-vendor`` in the repository),
checked against their pinned sha512, and reused from there: with the cache filled, a
build needs neither npm nor the network. The one thing nbconvert's reveal template loads
that no option redirects, Mermaid (imported from a CDN), is left out by the template
``mamllib/templates/offline_reveal``; the course has no diagrams. The template also wraps
long code lines. nbconvert 7's reveal template does not use ``font_awesome_url``.

A deck is the lecture, not the notebook: ``lecture_notebook`` rewrites a copy of each
notebook before export, so that the notebook stays the one source. The rules:

- a code cell shows its code only when tagged ``slide-code`` (the code is the point);
  every other input is hidden. Its figures and rendered tables of results stay, each on a
  slide of its own; what it prints (text, logs, progress bars) goes to the speaker notes. A dashboard (a widget output) is replaced
  by the screenshot of it in ``figures/screenshots/dashboard_<notebook>.png``, never by
  the widget's text.
- a markdown cell tagged ``takeaway`` or ``slide-text`` is shown whole. Other markdown
  keeps headings, lists, tables, formulas and short paragraphs; a long
  paragraph is spoken, not shown: it goes to the notes, its bold title (``**The split.**``)
  stays as the slide's heading. A long list item is cut at its first sentence on the
  slide (whole in the notes). ``#`` and ``##`` headings start slides.
- in the Exercises section the slide lists the exercises' titles; their text goes to the
  notes and their code cells (checks, solutions) are left out.
- a slide is 1280×720; one still too full is scaled down to fit when shown.
- Chinese text has no spaces between words: two characters count as one word.
Keys in a deck: arrows, Space, Esc (overview), S (speaker notes).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mamllib.paths import NOTEBOOKS, ROOT
from mamllib.tools.course import notebook_parser, select_notebooks

DEFAULT_OUT = ROOT / "build" / "slides"
CACHE_ENV = "MAMLLIB_CACHE"
TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "offline_reveal"
THEME = "white"  # its fonts ship with reveal.js; several other themes import Google Fonts
MATHJAX_CONFIG = "TeX-AMS_CHTML-full,Safe"  # nbconvert's default configuration
SLIDE_SIZE = (1280, 720)  # a projector's 720p; reveal.js scales it to the screen


@dataclass(frozen=True)
class Package:
    """An npm package to copy next to the decks.

    Attributes:
        name: the npm name.
        version: the exact version (pinned: the integrity below is that tarball's).
        integrity: the tarball's ``sha512-<base64>``, as ``npm pack --json`` reports it.
        files: ``fnmatch`` patterns of the paths, inside the package, that decks load.
    """

    name: str
    version: str
    integrity: str
    files: tuple[str, ...]

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        """The file name ``npm pack`` gives this package."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"

    @property
    def folder(self) -> str:
        """Where the package's files go, under ``<out>/vendor/``."""
        return self.tarball.removesuffix(".tgz")


# The one place the versions are pinned.
PACKAGES = {
    "reveal.js": Package(
        "reveal.js",
        "4.6.0",
        "sha512-QC80rYsZldAe95bW9VImucIPTjfsKhI0jRQrIOXU4P92ZyXb/dfw9L3EE96bN6i7UmeUl1qBieH4UNTr25erYw==",
        (
            "LICENSE",
            "dist/reveal.css",
            "dist/reveal.js",
            f"dist/theme/{THEME}.css",
            "dist/theme/fonts/source-sans-pro/*",
            "plugin/notes/notes.js",
        ),
    ),
    "requirejs": Package(
        "requirejs",
        "2.3.7",
        "sha512-DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw==",
        ("require.js",),
    ),
    "jquery": Package(
        "jquery",
        "3.7.1",
        "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
        ("LICENSE.txt", "dist/jquery.min.js"),
    ),
    "mathjax": Package(
        "mathjax",
        "2.7.9",
        "sha512-NOGEDTIM9+MrsqnjPEjVGNx4q0GQxqm61yQwSK+/5S59i26wId5IC5gNu9/bu8+CCVl5p9G2IHcAl/wJa+5+BQ==",
        (
            "LICENSE",
            "MathJax.js",
            "config/TeX-AMS_CHTML-full.js",
            "config/Safe.js",
            "extensions/*",
            "jax/element/*",
            "jax/input/TeX/*",
            "jax/output/CommonHTML/*",
            "fonts/HTML-CSS/TeX/woff/*",
            "fonts/HTML-CSS/TeX/otf/*",
            "localization/en/*",
        ),
    ),
    "html-manager": Package(
        "@jupyter-widgets/html-manager",
        "1.0.6",
        "sha512-+Mn+Ra8wyIHrYaUpfmf9A3dsLkt/NuwzPQN8sthdxBD35VV5cOJbpmgMhNR27n/rmP3mKyEe0PWCJrtZrXTXDQ==",
        # embed-amd.js finds its font-awesome fonts next to itself
        (
            "LICENSE",
            "dist/embed-amd.js",
            "dist/*.woff2",
            "dist/*.woff",
            "dist/*.ttf",
            "dist/*.eot",
            "dist/*.svg",
        ),
    ),
}


class VendorError(RuntimeError):
    """The pinned packages are not in the cache and cannot be fetched (the message says why)."""


def default_cache() -> Path:
    """``$MAMLLIB_CACHE/slides-vendor``, else ``.cache/slides-vendor`` in the repository."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base).expanduser() if base else ROOT / ".cache") / "slides-vendor"


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _fetch_command(packages: Sequence[Package], cache: Path) -> str:
    return f"cd {cache} && npm pack {' '.join(p.spec for p in packages)}"


def fetch(
    cache: Path | None = None, packages: Sequence[Package] = tuple(PACKAGES.values())
) -> dict[str, Path]:
    """The tarballs of ``packages`` in ``cache``, fetched with ``npm pack`` if missing.

    Returns:
        the tarball of each package, by npm name.

    Raises:
        VendorError: a tarball is missing and npm is not installed or cannot fetch it
            (no network), or a tarball does not match its pinned sha512.
    """
    cache = Path(cache) if cache is not None else default_cache()
    missing = [p for p in packages if not (cache / p.tarball).is_file()]
    if missing:
        npm = shutil.which("npm")
        names = ", ".join(p.spec for p in missing)
        if npm is None:
            raise VendorError(
                f"the slides need {names} in {cache}, and npm is not installed to fetch them. "
                "Install Node.js with npm (e.g. `apt-get install npm`) and build again, or run, "
                f"on a machine with npm and internet access: `{_fetch_command(missing, cache)}` "
                f"and copy the .tgz files into {cache}."
            )
        cache.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, npm_config_fund="false", npm_config_audit="false",
                   npm_config_update_notifier="false")  # fmt: skip
        # Into a fresh folder first, so that the cache never holds a partial tarball.
        with tempfile.TemporaryDirectory(dir=cache, prefix=".npm-pack-") as staging:
            try:
                done = subprocess.run(
                    [npm, "pack", *(p.spec for p in missing)],
                    cwd=staging, env=env, capture_output=True, text=True, timeout=600,
                )  # fmt: skip
            except subprocess.TimeoutExpired as exc:
                raise VendorError(f"`npm pack {names}` did not finish in {exc.timeout} s") from exc
            if done.returncode != 0:
                errors = [line for line in done.stderr.splitlines() if line.startswith("npm error")]
                head = "\n".join(errors[:4] or done.stderr.strip().splitlines()[-4:])
                raise VendorError(
                    f"npm could not fetch {names} (exit {done.returncode}; is the npm registry "
                    f"reachable?):\n{head}\nWith network access, run "
                    f"`{_fetch_command(missing, cache)}`."
                )
            for package in missing:
                if (Path(staging) / package.tarball).is_file():
                    os.replace(Path(staging) / package.tarball, cache / package.tarball)
    tarballs = {}
    for package in packages:
        path = cache / package.tarball
        if not path.is_file():
            raise VendorError(f"npm pack did not write {path}")
        found = _integrity(path)
        if found != package.integrity:
            raise VendorError(
                f"{path} is not {package.spec} as pinned in mamllib.tools.slides (found {found[:24]}…, "
                f"pinned {package.integrity[:24]}…): delete it and build again to fetch it anew."
            )
        tarballs[package.name] = path
    return tarballs


def unpack(package: Package, tarball: Path, vendor: Path) -> Path:
    """Copy the files of ``package`` that decks load from ``tarball`` to ``vendor/<folder>``.

    Returns:
        the folder. It is left alone when it already holds this exact tarball's files.
    """
    target = vendor / package.folder
    stamp = target / ".integrity"
    if stamp.is_file() and stamp.read_text() == package.integrity:
        return target
    if target.exists():
        shutil.rmtree(target)
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            relative = member.name.removeprefix("package/")
            if not member.isfile() or not any(fnmatch.fnmatch(relative, p) for p in package.files):
                continue
            destination = (target / relative).resolve()
            if not destination.is_relative_to(target.resolve()):
                raise VendorError(f"{tarball}: {member.name} points outside the package")
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.extractfile(member).read())
    stamp.write_text(package.integrity)
    return target


def exporter_options(vendor: str = "vendor") -> dict[str, object]:
    """The ``SlidesExporter`` settings that point every library at ``vendor`` (a relative URL)."""
    folder = {key: f"{vendor}/{p.folder}" for key, p in PACKAGES.items()}
    return {
        "template_name": TEMPLATE,
        "extra_template_basedirs": [str(TEMPLATES)],
        "reveal_url_prefix": folder["reveal.js"],
        "reveal_theme": THEME,
        "reveal_scroll": False,  # a slide fits (the template scales a full one down)
        "reveal_width": str(SLIDE_SIZE[0]),
        "reveal_height": str(SLIDE_SIZE[1]),
        "reveal_number": "c/t",
        "require_js_url": f"{folder['requirejs']}/require.js",
        "jquery_url": f"{folder['jquery']}/dist/jquery.min.js",
        "mathjax_url": f"{folder['mathjax']}/MathJax.js?config={MATHJAX_CONFIG}",
        "widget_renderer_url": f"{folder['html-manager']}/dist/embed-amd.js",
        "exclude_input_prompt": True,
        "exclude_output_prompt": True,
    }


# ----------------------------------------------------------------------------- the lecture

SLIDE_CODE = "slide-code"  # a code cell whose code is the point: its input is shown
SHOWN_WHOLE = {"slide-text", "takeaway"}  # markdown cells whose every word is for the slide
SCREENSHOTS = ROOT / "figures" / "screenshots"
WIDGET = "application/vnd.jupyter.widget-view+json"
WORDS_SHOWN = 30  # a longer paragraph is said, not shown: it goes to the notes
LIST_WORDS = 90  # a longer list goes on as many slides as it needs
WORDS_BESIDE_A_FIGURE = 25  # a figure after more text than this gets a slide of its own
_RANK = {"slide": 2, "subslide": 1}
_TITLE = re.compile(r"^\*\*([^*\n]+?[.?!。？！：])\*\*\s*")  # "**The split.** As in the paper, ..."
_LOCAL_LINK = re.compile(r"\[([^\]]+)\]\((?![a-z]+:|#)[^)]*\)")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"[.;:](?=\s)|\s—\s|[。；：]")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CJK_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]")  # 。，、：（）…
EXERCISES = ("Exercises", "练习")  # the section's heading, in each language


def _words(text: str) -> int:
    """Words in ``text``, two CJK characters counting as one (they have no spaces)."""
    cjk = len(_CJK.findall(text))
    return len(_CJK_PUNCTUATION.sub(" ", _CJK.sub(" ", text)).split()) + (cjk + 1) // 2


def _say(lang: str, text: str, **fields) -> str:
    """``text`` in ``lang`` from mamllib's catalog (English when it lacks it)."""
    from mamllib.i18n import catalog

    return catalog(lang).get(text, text).format(**fields)


def dashboard_screenshot(name: str, lang: str = "en") -> Path:
    """The picture of notebook ``name``'s dashboard that its deck shows in place of the widget
    (``figures/screenshots/<lang>/`` for another language, when it has one)."""
    translated = SCREENSHOTS / lang / f"dashboard_{name}.png"
    return (
        translated
        if lang != "en" and translated.is_file()
        else SCREENSHOTS / f"dashboard_{name}.png"
    )


def _blocks(text: str) -> list[str]:
    """Markdown split at blank lines, keeping fenced code and display math whole."""
    blocks, current = [], []
    for part in re.split(r"\n[ \t]*\n", text.strip()):
        current.append(part)
        joined = "\n\n".join(current)
        if joined.count("```") % 2 == 0 and joined.count("$$") % 2 == 0:
            blocks.append(joined)
            current = []
    if current:
        blocks.append("\n\n".join(current))
    split = []
    for block in blocks:  # "**What you will learn**" and its list below, without a blank line
        lines = block.splitlines()
        at = next((i for i, line in enumerate(lines) if _ITEM.match(line)), 0)
        if at and not block.startswith(("|", "$$", "```", "<")):
            split += ["\n".join(lines[:at]), "\n".join(lines[at:])]
        else:
            split.append(block)
    return [b for b in split if b.strip()]


def _balanced(text: str) -> bool:
    """No emphasis, code span or formula left open in ``text``."""
    return all(text.count(mark) % 2 == 0 for mark in ("**", "`", "$")) and (
        text.replace("**", "").count("*") % 2 == 0
    )


def _first_sentence(item: str) -> str:
    """``item`` up to its first sentence's end, where no markup is left open (else whole)."""
    for match in _SENTENCE_END.finditer(item):
        head = item[: match.start() + (1 if match.group().strip() in ".:" else 0)]
        if _words(head) >= 6 and _balanced(head):
            return head.rstrip(";:—, ") + ("" if head.endswith(".") else " …")
    return item


def _short_lists(block: str) -> list[str]:
    """The list ``block`` with long items cut at their first sentence, in pieces of at most
    ``LIST_WORDS`` words (one slide each)."""
    items = []
    for line in block.splitlines():
        if _ITEM.match(line) or not items:
            items.append(line)
        else:
            items[-1] += " " + line.strip()
    pieces, words = [[]], 0
    for item in items:
        short = item if _words(item) <= WORDS_SHOWN else _first_sentence(item)
        if pieces[-1] and words + _words(short) > LIST_WORDS:
            pieces.append([])
            words = 0
        pieces[-1].append(short)
        words += _words(short)
    return ["\n".join(piece) for piece in pieces]


def _kind(block: str) -> str:
    first = block.lstrip()
    if first.startswith("#"):
        return "h" + str(len(first) - len(first.lstrip("#")))
    if _ITEM.match(first):
        return "list"
    if first.startswith(("|", "$$", "```", "<")):
        return "keep"
    return "paragraph"


def _cell(source: str, kind: str, cell_type: str = "markdown", **fields):
    import nbformat

    if cell_type == "markdown":  # a link to a file of the course leads nowhere from a deck
        source = _LOCAL_LINK.sub(r"\1", source)
    make = nbformat.v4.new_markdown_cell if cell_type == "markdown" else nbformat.v4.new_code_cell
    cell = make(source, **fields)
    cell.metadata["slideshow"] = {"slide_type": kind}
    return cell


def _text_of(output) -> str | None:
    """What a non-figure output says, as markdown for the notes (None: nothing worth saying)."""
    if output.output_type == "stream":
        text = output.text
    elif output.output_type == "error":
        text = f"{output.ename}: {output.evalue}"
    elif "text/markdown" in output.get("data", {}):
        return output.data["text/markdown"]
    else:
        text = output.get("data", {}).get("text/plain", "")
    text = re.sub(r"\x1b\[[0-9;]*m|.*\r(?!\n)", "", text).strip()  # colours; bars' redraws
    return f"```text\n{text}\n```" if text else None


class _Deck:
    """The cells of the lecture, built in order; knows what the current slide shows."""

    def __init__(self, lang: str = "en"):
        self.continued = _say(lang, " (continued)")
        self.cells, self.pending, self.heading = [], None, ""
        self.words, self.figures = 0, 0  # on the current slide

    def show(self, cell, kind: str, *, figure: bool = False) -> None:
        """Add a visible cell; a ``figure`` gets a slide of its own unless the slide so far
        holds at most a heading and a line or two."""
        if self.pending and _RANK[self.pending] > _RANK.get(kind, 0):
            kind = self.pending
        if kind not in _RANK and figure and (self.figures or self.words > WORDS_BESIDE_A_FIGURE):
            kind = "subslide"
        self.pending = None
        if kind in _RANK:
            self.words, self.figures = 0, 0
        cell.metadata["slideshow"] = {"slide_type": kind}
        self.cells.append(cell)
        if cell.cell_type == "markdown" and cell.source.startswith("#"):
            self.heading = cell.source.lstrip("#").strip().removesuffix(self.continued)
        if figure:
            self.figures += 1
        elif cell.cell_type == "markdown" and not cell.source.startswith("#"):
            self.words += _words(cell.source)
        else:
            self.words += 0 if cell.cell_type == "markdown" else WORDS_BESIDE_A_FIGURE + 1

    def hold(self, kind: str) -> None:
        """A cell that starts a slide shows nothing: the next visible cell starts it."""
        if kind in _RANK and _RANK[kind] > _RANK.get(self.pending, 0):
            self.pending = kind

    def note(self, text: str | None) -> None:
        if text and text.strip():
            self.cells.append(_cell(text, "notes"))


def _markdown(deck: _Deck, cell, kind: str, exercises: bool) -> bool:
    """Add one markdown cell's slides and notes; return whether the Exercises section is open."""
    if SHOWN_WHOLE & set(cell.metadata.get("tags", [])):
        deck.show(_cell(cell.source, kind), kind)
        return exercises
    for block in _blocks(cell.source):
        what = _kind(block)
        if what in ("h1", "h2"):
            exercises = block.lstrip("# ").startswith(EXERCISES)
            deck.show(_cell(block, "slide"), "slide")
            if what == "h1":
                deck.pending = "subslide"  # the title slide shows the title alone
        elif what.startswith("h"):
            deck.show(_cell(block, kind), kind)
        elif exercises:
            title = _TITLE.match(block)
            if title:
                deck.show(_cell(f"- **{title.group(1)}**", "-"), "-")
            if "solution" not in block.lower() and "解答" not in block:
                deck.note(block)
        elif what == "list":
            pieces = _short_lists(block)
            for i, piece in enumerate(pieces):
                if i:  # the list goes on, on a slide of its own
                    deck.show(_cell(f"### {deck.heading}{deck.continued}", "subslide"), "subslide")
                deck.show(_cell(piece, "-" if i else kind), "-" if i else kind)
            if pieces != [block]:
                deck.note(block)
        elif what == "keep" or _words(block) <= WORDS_SHOWN:
            deck.show(_cell(block, kind), kind)
        else:
            title = _TITLE.match(block)
            if title:
                deck.show(_cell(f"### {title.group(1)}", "subslide"), "subslide")
                rest = block[title.end() :]
                first = _first_sentence(rest)
                if first != rest and _words(first) <= WORDS_SHOWN:
                    deck.show(_cell(first, "-"), "-")
            else:
                deck.hold(kind)
            deck.note(block)
        kind = "-"  # only a cell's first block starts the cell's slide
    return exercises


def _code(deck: _Deck, cell, kind: str, screenshot: str | None) -> None:
    shown = SLIDE_CODE in cell.metadata.get("tags", [])
    figures, notes = [], []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if WIDGET in data:
            if screenshot is not None:
                figures.append({"output_type": "display_data", "metadata": {},
                                "data": {"image/png": screenshot}})  # fmt: skip
        elif "image/png" in data:
            figures.append({**output, "data": {"image/png": data["image/png"]}})
        elif data.get("text/markdown", "").lstrip().startswith("|"):  # a table of results
            figures.append({**output, "data": {"text/markdown": data["text/markdown"]}})
        else:
            notes.append(_text_of(output))
    if shown:
        deck.show(_cell(cell.source, kind, "code", outputs=figures[:1]), kind, figure=bool(figures))
        figures, kind = figures[1:], "-"
    for figure in figures:  # one slide each
        visible = _cell("", kind, "code", outputs=[figure])
        visible.metadata["transient"] = {"remove_source": True}
        deck.show(visible, kind, figure=True)
        kind = "-"
    if not shown and not figures:
        deck.hold(kind)
    deck.note("\n\n".join(n for n in notes if n))


def lecture_notebook(nb, name: str, lang: str = "en"):
    """A copy of notebook ``nb`` (named ``name``, in ``lang``) rewritten into the lecture's
    slides and notes.

    The cells' ``slideshow.slide_type`` still decide where slides start; ``skip`` cells stay
    out and ``notes`` cells go to the notes. See the module's docstring for the rules."""
    import nbformat

    picture = dashboard_screenshot(name, lang)
    screenshot = base64.b64encode(picture.read_bytes()).decode() if picture.is_file() else None
    deck, exercises = _Deck(lang), False
    for cell in nb.cells:
        kind = cell.metadata.get("slideshow", {}).get("slide_type", "-")
        if kind == "skip":
            continue
        if kind == "notes":
            deck.note(cell.source if cell.cell_type == "markdown" else None)
            if cell.cell_type == "code":
                deck.note("\n\n".join(filter(None, map(_text_of, cell.get("outputs", [])))))
            continue
        if exercises and kind in ("subslide", "fragment"):
            kind = "-"  # the exercises share one slide
        if cell.cell_type == "markdown":
            exercises = _markdown(deck, cell, kind, exercises)
        elif cell.cell_type == "code" and not exercises:
            _code(deck, cell, kind, screenshot)
    lecture = nbformat.v4.new_notebook(metadata={k: v for k, v in nb.metadata.items()
                                                 if k != "widgets"})  # fmt: skip
    lecture.cells = deck.cells
    return lecture


@dataclass(frozen=True)
class Deck:
    """A built deck: its notebook's name and title, file, and how many slides it has."""

    name: str
    title: str
    path: Path
    slides: int  # horizontal slides: the title and each section
    subslides: int  # all slides, the vertical ones (steps of a section) included


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def _count_slides(nb) -> tuple[int, int]:
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type", "-") for cell in nb.cells]
    visible = [kind for kind in kinds if kind not in {"skip", "notes"}]
    if not visible:
        return 0, 0
    visible[0] = "slide"  # nbconvert starts the deck with the first visible cell
    slides = visible.count("slide")
    return slides, slides + visible.count("subslide")


def export_deck(path: Path, out: Path, exporter, lang: str = "en") -> Deck:
    """Write the deck of the notebook at ``path`` (in ``lang``) into ``out`` with ``exporter``."""
    import nbformat

    nb = lecture_notebook(nbformat.read(path, as_version=4), path.stem, lang)
    title = _title(nb) or path.stem
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    target = out / f"{path.stem}.slides.html"
    target.write_text(body, encoding="utf-8")
    return Deck(path.stem, title, target, *_count_slides(nb))


def write_index(decks: Sequence[Deck], out: Path, lang: str = "en") -> Path:
    """``out/index.html``: a page linking every deck, with no outside resource (in ``lang``)."""
    items = "\n".join(
        f'<li><a href="{html.escape(deck.path.name)}">{html.escape(deck.title)}</a>'
        f" <span>{_say(lang, '({slides} slides, {subslides} with their steps)', slides=deck.slides, subslides=deck.subslides)}</span></li>"
        for deck in decks
    )
    title = _say(lang, "MAML course: slides")
    keys = _say(
        lang,
        "Keys: <kbd>→</kbd>/<kbd>←</kbd> next and previous section, <kbd>↓</kbd>/<kbd>↑</kbd> its "
        "steps,\n<kbd>Space</kbd> everything in order, <kbd>Esc</kbd> overview, <kbd>S</kbd> "
        "speaker notes.\nThe dashboards are pictures here: for the live ones, "
        "<code>{voila}</code> or the notebooks.",
        voila="voila lecture/" if lang == "en" else f"voila lecture/{lang}/",
    )
    built = _say(
        lang,
        "Built by <code>{command}</code>; everything loads from this folder, no network needed.",
        command="python -m mamllib.tools.slides" + ("" if lang == "en" else f" --lang {lang}"),
    )
    page = f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 46em; margin: 3em auto; line-height: 1.5; }}
span {{ color: #666; }}
kbd {{ border: 1px solid #ccc; border-radius: 3px; padding: 0 .3em; }}
</style>
</head>
<body>
<h1>{title}</h1>
<ol>
{items}
</ol>
<p>{keys}</p>
<p>{built}</p>
</body>
</html>
"""
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def build(
    out: str | os.PathLike = DEFAULT_OUT,
    notebooks: Sequence[str | os.PathLike] | None = None,
    cache: str | os.PathLike | None = None,
    lang: str = "en",
) -> list[Deck]:
    """Build the decks of ``notebooks`` (default: all the course's, in ``lang``: the English
    ones or ``notebooks/<lang>/``) and the index into ``out``.

    Raises:
        VendorError: see ``fetch``.
    """
    from nbconvert import SlidesExporter

    out = Path(out)
    folder = NOTEBOOKS if lang == "en" else NOTEBOOKS / lang
    paths = [Path(p) for p in notebooks] if notebooks is not None else select_notebooks((), folder)
    tarballs = fetch(cache)
    out.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES.values():
        unpack(package, tarballs[package.name], out / "vendor")
    exporter = SlidesExporter(**exporter_options())
    decks = [export_deck(path, out, exporter, lang) for path in paths]
    write_index(decks, out, lang)
    return decks


def main(argv: Sequence[str] | None = None) -> int:
    parser = notebook_parser("python -m mamllib.tools.slides", __doc__, DEFAULT_OUT)
    parser.add_argument(
        "--cache", type=Path, default=None, help=f"npm tarballs (default {default_cache()})"
    )
    parser.add_argument("--lang", choices=("en", "zh"), default="en",
                        help="zh: the decks of notebooks/zh, into <out>/zh (default en)")  # fmt: skip
    args = parser.parse_args(argv)
    folder = NOTEBOOKS if args.lang == "en" else NOTEBOOKS / args.lang
    out = args.out if args.lang == "en" else args.out / args.lang
    try:
        paths = select_notebooks(args.notebooks, folder)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    try:
        decks = build(out, paths, args.cache, args.lang)
    except VendorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for deck in decks:
        print(f"{deck.path}: {deck.slides} slides, {deck.subslides} with their steps")
    print(f"open {(out / 'index.html').resolve().as_uri()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
