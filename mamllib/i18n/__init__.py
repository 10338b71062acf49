"""The course in the reader's language: one setting, one catalog of texts per language.

    mamllib.set_language("zh")     # or MAMLLIB_LANG=zh in the environment; default "en"

The English texts are written in the code and are the keys of the catalogs: ``tr(text,
**fields)`` looks ``text`` up in ``mamllib/i18n/<language>.json`` and fills its
``{fields}`` (``str.format``); a text the catalog lacks stays English. A learner's label
(``"MAML (first-order), 3 steps"``) stays English in the data, where it picks the colour;
``tr_label`` translates it where it is drawn. In Chinese, figures need a font with the
glyphs: ``set_language("zh")`` makes matplotlib fall back to the first CJK font installed
(see ``CJK_FONTS``), and says once what to install when there is none.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path

LANGUAGES = ("en", "zh")
ENV = "MAMLLIB_LANG"
# Tried in this order; matplotlib reads the first face of a .ttc, so Debian's Noto Sans
# CJK (one .ttc for all five) appears as "Noto Sans CJK JP": its Chinese glyphs are there.
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "PingFang SC",
    "Microsoft YaHei",
    "SimHei",
    "Arial Unicode MS",
)
_CJK_FILES = re.compile(r"NotoSans(CJK|SC)|wqy|SourceHanSans|PingFang|msyh|simhei", re.I)
INSTALL_HINT = (
    "mamllib: no Chinese font found, so the figures would show boxes instead of Chinese "
    "characters; install one (Debian/Ubuntu: `sudo apt install fonts-noto-cjk`; macOS: "
    "`brew install --cask font-noto-sans-cjk-sc`; conda: `conda install -c conda-forge "
    "font-ttf-noto-cjk`) and restart the kernel."
)

_language: str | None = None
_fonts_done = False


def _valid(lang: str, where: str) -> str:
    value = str(lang).strip().lower().replace("_", "-")
    value = {"zh-cn": "zh", "zh-hans": "zh", "en-us": "en", "en-gb": "en"}.get(value, value)
    if value not in LANGUAGES:
        raise ValueError(
            f"unknown language {lang!r} ({where}); valid ones: {', '.join(map(repr, LANGUAGES))}"
        )
    return value


def set_language(lang: str | None = None) -> str:
    """Set the course's language: ``lang``, else ``$MAMLLIB_LANG``, else ``"en"``.

    In Chinese, matplotlib's figures fall back to a CJK font (``use_cjk_font``).

    Returns:
        the language now in use: ``"en"`` or ``"zh"``.

    Raises:
        ValueError: an unknown language (the message names it and the valid ones).
    """
    global _language
    if lang is None:
        lang = os.environ.get(ENV) or "en"
        where = f"${ENV}" if os.environ.get(ENV) else "default"
    else:
        where = "set_language"
    _language = _valid(lang, where)
    if _language == "zh":
        use_cjk_font()
    return _language


def language() -> str:
    """The course's language: the one ``set_language`` set, else ``$MAMLLIB_LANG``, else "en"."""
    if _language is not None:
        return _language
    value = os.environ.get(ENV)
    lang = _valid(value, f"${ENV}") if value else "en"
    if lang == "zh" and not _fonts_done:
        use_cjk_font()
    return lang


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """The texts of ``lang`` by their English text (or id); empty for English."""
    path = Path(__file__).resolve().parent / f"{lang}.json"
    if lang == "en" or not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def tr(text: str, /, **fields: object) -> str:
    """``text`` in the course's language (English when the catalog lacks it), its
    ``{fields}`` filled with ``str.format``."""
    translated = catalog(language()).get(text, text)
    return translated.format(**fields) if fields else translated


_COUNT = re.compile(r"(, )?\b(\d+) (step|task|shot|way)s?\b")


def tr_label(label: str) -> str:
    """A learner's label as drawn: its known terms translated, longest first
    (``"MAML (first-order), 3 steps"`` -> ``"MAML（一阶），3 步"`` in Chinese)."""
    texts = catalog(language())
    if not texts:
        return label
    if label in texts:
        return texts[label]
    terms = (t for t in texts if t.startswith("label:") and t != "label:, ")
    for term in sorted(terms, key=len, reverse=True):
        label = label.replace(term.removeprefix("label:"), texts[term])
    return _COUNT.sub(
        lambda m: (
            (texts.get("label:, ", ", ") if m.group(1) else "")
            + tr_count(int(m.group(2)), m.group(3))
        ),
        label,
    )


def tr_count(n: int, word: str) -> str:
    """``"1 step"``, ``"3 steps"``; in Chinese ``"3 步"`` (``word``'s entry in the catalog).
    Labels that pick a style by their steps are built in English (``viz.plots.plural``)."""
    if language() == "en":
        return f"{n} {word}{'' if n == 1 else 's'}"
    return f"{n} {tr(word)}"


def cjk_font() -> str | None:
    """The first of ``CJK_FONTS`` that matplotlib can use, or None. Fonts installed after
    matplotlib built its font cache are found on the system and added."""
    from matplotlib import font_manager

    def known() -> str | None:
        names = {font.name for font in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in names), None)

    found = known()
    if found is None:
        for path in font_manager.findSystemFonts():
            if _CJK_FILES.search(Path(path).name):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        found = known()
    return found


def use_cjk_font() -> str | None:
    """Let matplotlib draw Chinese: the first CJK font found follows the current sans-serif
    font (which keeps the Latin letters, Greek symbols and ▲ it always drew), as a fallback
    for the glyphs it lacks. Without one, prints ``INSTALL_HINT`` once. Returns the font."""
    global _fonts_done
    import matplotlib as mpl

    font = cjk_font()
    if font is None:
        if not _fonts_done:
            print(INSTALL_HINT, file=sys.stderr)
        _fonts_done = True
        return None
    _fonts_done = True
    first = ["DejaVu Sans", font]
    rest = [name for name in mpl.rcParams["font.sans-serif"] if name not in first]
    mpl.rcParams["font.sans-serif"] = [*first, *rest]
    # A generic family ("sans-serif") resolves to one font; a list of names falls back.
    mpl.rcParams["font.family"] = [*first, "sans-serif"]
    return font
