"""The data location and the cache folder: which setting wins, resolved at call time."""

from __future__ import annotations

import sys

import pytest

from mamllib.data import DataNotFoundError, cache_dir, data_dir, set_data_dir
from mamllib.data.location import default_dir, locate


@pytest.fixture(autouse=True)
def clean(monkeypatch, tmp_path):
    """No setting from the test run leaks in; a private home; set_data_dir undone."""
    for name in ("MAMLLIB_DATA", "MAMLLIB_CACHE", "XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield
    set_data_dir(None)


@pytest.mark.skipif(sys.platform == "win32", reason="the XDG rule is for Linux and macOS")
def test_default_is_the_user_cache_folder(tmp_path, monkeypatch):
    assert data_dir() == cache_dir() == tmp_path / "home" / ".cache" / "mamllib"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == cache_dir() == tmp_path / "xdg" / "mamllib"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # invalid per the XDG spec
    assert default_dir() == tmp_path / "home" / ".cache" / "mamllib"


def test_windows_uses_local_app_data(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert default_dir() == tmp_path / "Local" / "mamllib"


def test_argument_then_set_data_dir_then_environment_then_default(tmp_path, monkeypatch):
    assert locate() == (default_dir(), "default")
    monkeypatch.setenv("MAMLLIB_DATA", str(tmp_path / "env"))
    assert locate() == (tmp_path / "env", "environment") and data_dir() == tmp_path / "env"
    set_data_dir(tmp_path / "chosen")
    assert locate() == (tmp_path / "chosen", "set_data_dir")
    assert data_dir() == tmp_path / "chosen"
    assert locate(tmp_path / "given") == (tmp_path / "given", "argument")
    set_data_dir(None)
    assert data_dir() == tmp_path / "env"
    monkeypatch.delenv("MAMLLIB_DATA")
    assert data_dir() == default_dir()


def test_resolved_when_called_not_when_imported(tmp_path, monkeypatch):
    before = data_dir()
    monkeypatch.setenv("MAMLLIB_DATA", str(tmp_path / "later"))
    assert data_dir() == tmp_path / "later" != before


def test_paths_are_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMLLIB_DATA", "~/data")
    monkeypatch.setenv("MAMLLIB_CACHE", "~/cache")
    assert data_dir() == tmp_path / "home" / "data"
    assert cache_dir() == tmp_path / "home" / "cache"
    set_data_dir("~/chosen")
    assert data_dir() == tmp_path / "home" / "chosen"


def test_cache_is_apart_from_the_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMLLIB_DATA", str(tmp_path / "read-only"))
    set_data_dir(tmp_path / "chosen")
    assert cache_dir() == default_dir(), "the data location never moves the cache"
    monkeypatch.setenv("MAMLLIB_CACHE", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"


def test_origins_in_words(tmp_path, monkeypatch):
    assert locate().origin == "the default data location; $MAMLLIB_DATA is not set"
    monkeypatch.setenv("MAMLLIB_DATA", str(tmp_path))
    assert locate().origin == "from $MAMLLIB_DATA"
    set_data_dir(tmp_path)
    assert locate().origin == "set by set_data_dir()"
    assert locate(tmp_path).origin == "the folder given"


def test_error_is_a_file_not_found_error_shown_in_one_line():
    error = DataNotFoundError("Omniglot is not in /x (the folder given). Get it with ...")
    assert isinstance(error, FileNotFoundError)
    assert error._render_traceback_() == [
        "DataNotFoundError: Omniglot is not in /x (the folder given). Get it with ..."
    ]
