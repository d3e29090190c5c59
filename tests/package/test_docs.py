"""The examples of docs/python.md and docs/fsspec.md run as doctests, in a
scratch directory."""

import doctest
import os
import pathlib

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "python.md"


def test_python_md_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted >= 10
    assert result.failed == 0


def test_fsspec_md_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = DOC.parent / "fsspec.md"
    result = doctest.testfile(str(doc), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted >= 20
    assert result.failed == 0
