"""mamllib.i18n: the language setting, the catalog, labels, and the CJK font for figures."""

from __future__ import annotations

import ast
import json
import string
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from browser import in_ci

import mamllib
from mamllib import i18n

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PACKAGE = Path(mamllib.__file__).resolve().parent
CATALOG = json.loads((PACKAGE / "i18n" / "zh.json").read_text(encoding="utf-8"))


@pytest.fixture
def lang(monkeypatch):
    """Restores the module's state: each test sets its own language."""
    monkeypatch.delenv(i18n.ENV, raising=False)
    monkeypatch.setattr(i18n, "_language", None)
    return monkeypatch


def test_language_from_argument_then_environment_then_english(lang):
    assert i18n.language() == "en"
    lang.setenv(i18n.ENV, "zh")
    assert i18n.language() == "zh"
    assert i18n.set_language() == "zh"  # no argument: the environment's
    assert mamllib.set_language("en") == "en"  # the argument wins over the environment
    assert i18n.language() == "en" and i18n.tr("new task") == "new task"
    assert mamllib.set_language("zh_CN") == "zh"
    assert i18n.tr("new task") == "新任务"


@pytest.mark.parametrize("where", ["argument", "environment"])
def test_an_unknown_language_is_one_line_naming_it_and_the_valid_ones(lang, where):
    if where == "argument":
        with pytest.raises(ValueError) as error:
            i18n.set_language("fr")
    else:
        lang.setenv(i18n.ENV, "fr")
        with pytest.raises(ValueError) as error:
            i18n.tr("new task")
    message = str(error.value)
    assert "\n" not in message and "'fr'" in message and "'en'" in message and "'zh'" in message


def test_tr_fills_fields_and_falls_back_to_english(lang):
    i18n.set_language("zh")
    assert i18n.tr("loss {loss:.2f}", loss=0.123) == "损失 0.12"
    assert i18n.tr("a text no catalog has {n}", n=3) == "a text no catalog has 3"
    i18n.set_language("en")
    assert i18n.tr("loss {loss:.2f}", loss=0.123) == "loss 0.12"


def test_labels_translate_where_drawn_and_keep_their_colour(lang):
    from mamllib.viz.plots import color_for

    label = "MAML (first-order), 3 steps (diverged)"
    i18n.set_language("en")
    assert i18n.tr_label(label) == label and i18n.tr_count(1, "step") == "1 step"
    i18n.set_language("zh")
    assert i18n.tr_label(label) == "MAML（一阶），3 步（发散）"
    assert i18n.tr_label("pre-trained (best α), 1 step") == "预训练（最佳 α），1 步"
    assert i18n.tr_count(5, "task") == "5 个任务"
    assert i18n.tr_label("pre-trained (α = 0.01, also the best α)") == (
        "预训练 (α = 0.01, also the best α)"  # a comma of the English text is left alone
    )
    assert color_for(label) == "tab:orange"  # the data keeps the English label


def _tr_calls() -> list[tuple[str, str, set[str]]]:
    """Every ``tr("literal", **fields)`` in the package, and the slides' ``_say(lang,
    "literal", **fields)``: (where, key, field names)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            at = {"tr": 0, "_say": 1}.get(getattr(node.func, "id", None))
            if at is None or len(node.args) <= at:
                continue
            text = node.args[at]
            if isinstance(text, ast.Constant) and isinstance(text.value, str):
                where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
                found.append((where, text.value, {k.arg for k in node.keywords}))
    return found


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_text_the_code_translates_is_in_the_catalog_with_the_same_fields():
    calls = _tr_calls()
    assert len(calls) > 40  # the viz modules route their texts through tr
    missing = [f"{where}: {key!r}" for where, key, _ in calls if key not in CATALOG]
    assert not missing, "add to mamllib/i18n/zh.json:\n" + "\n".join(missing)
    wrong = [
        f"{where}: {key!r}"
        for where, key, fields in calls
        if not (_fields(CATALOG[key]) <= fields and _fields(key) <= fields)
    ]
    assert not wrong, "fields the call does not give:\n" + "\n".join(wrong)


def test_the_catalog_is_chinese_and_uses_the_course_terms():
    no_words = {"label:, ", "label:MAML (α = 0.001)", "{tasks}: y = A sin(x + φ)"}  # no words
    english = [key for key, text in CATALOG.items()
               if key not in no_words and not any("\u4e00" <= ch <= "\u9fff" for ch in text)]  # fmt: skip
    assert not english, english
    assert CATALOG["support set"] == "支持集" and CATALOG["label:pre-trained"] == "预训练"
    assert "查询集" in CATALOG["query MSE"] and "内循环" in CATALOG["α (inner lr)"]


def _ink(text: str) -> np.ndarray:
    fig = plt.figure(figsize=(3, 0.8), dpi=80)
    fig.text(0.05, 0.3, text, fontsize=20)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return pixels


def test_figures_draw_chinese_glyphs_not_boxes(lang):
    if i18n.cjk_font() is None:
        message = "no CJK font installed (Debian/Ubuntu: apt install fonts-noto-cjk)"
        if in_ci():
            pytest.fail(message)  # .ci/run installs one
        pytest.skip(message)
    i18n.set_language("zh")
    with _no_missing_glyphs():
        task, query = _ink("任务"), _ink("查询")
    # A missing glyph is the same box for every character: two words would draw alike.
    assert (task != query).any()


class _no_missing_glyphs:
    def __enter__(self):
        import warnings

        self.catcher = warnings.catch_warnings(record=True)
        self.caught = self.catcher.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self.catcher.__exit__(*exc)
        missing = [str(w.message) for w in self.caught if "missing from font" in str(w.message)]
        assert not missing, missing


def test_without_a_cjk_font_one_line_says_what_to_install():
    code = (
        "import matplotlib; matplotlib.use('Agg')\n"
        "from mamllib import i18n\n"
        "i18n.cjk_font = lambda: None\n"
        "i18n.set_language('zh'); i18n.set_language('zh'); i18n.tr('new task')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "font" in line]
    assert len(lines) == 1 and "fonts-noto-cjk" in lines[0], done.stderr
