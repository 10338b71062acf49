"""``python -m mamllib.tools.lecture``: the options it takes for itself (the Voilà pages
are tested in tests/test_browser_voila.py and tests/test_browser_zh.py)."""

import pytest

from mamllib.tools import lecture


@pytest.mark.parametrize(
    ("argv", "lang", "rest"),
    [
        (["--port=1"], "en", ["--port=1"]),
        (["--lang", "zh", "--port=1"], "zh", ["--port=1"]),
        (["lecture/zh", "--lang=zh"], "zh", ["lecture/zh"]),
    ],
)
def test_the_language_option_is_ours_not_voilas(argv, lang, rest):
    assert lecture.take_language(argv) == lang and argv == rest


def test_an_unknown_language_is_one_line_naming_the_valid_ones():
    with pytest.raises(SystemExit) as error:
        lecture.take_language(["--lang", "fr"])
    assert str(error.value) == "error: unknown language 'fr'; valid ones: en, zh"


def test_the_chinese_home_page_lists_the_chinese_titles():
    titles = lecture.titles(lecture.LECTURE / "zh")
    assert sorted(titles) == sorted(lecture.titles())
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in title) for title in titles.values())
    assert lecture.header("zh") == "MAML 课程：交互面板，每章一个。"
