"""``mamllib.paths``: one repository root, and the folders the course ships under it."""

from __future__ import annotations

from mamllib import paths


def test_root_is_the_repository_that_holds_the_package():
    assert (paths.ROOT / "README.md").is_file()
    assert (paths.ROOT / "pyproject.toml").is_file()
    assert (paths.ROOT / "mamllib" / "paths.py").is_file()


def test_shipped_folders_exist_under_the_root():
    for folder in (paths.NOTEBOOKS, paths.CHECKPOINTS, paths.RESULTS, paths.FIGURES):
        assert folder.parent == paths.ROOT and folder.is_dir(), folder
    assert any(paths.NOTEBOOKS.glob("*.ipynb")) and any(paths.CHECKPOINTS.glob("*.pt"))
