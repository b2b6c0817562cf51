"""The launcher's gitignore semantics (https://git-scm.com/docs/gitignore, "PATTERN FORMAT"), and the file walk."""
import os

import pytest

from chronos_training.code import list_files
from chronos_training.gitignore import is_ignored, parse_gitignore


def ignored(patterns, path, is_dir=False, base=""):
    return is_ignored(parse_gitignore(patterns, base), path, is_dir)


@pytest.mark.parametrize("patterns,path,is_dir,expected", [
    ("*.log", "a.log", False, True), ("*.log", "deep/dir/a.log", False, True), ("*.log", "a.log.txt", False, False),
    ("/build", "build", True, True), ("/build", "src/build", True, False), ("build/", "src/build", True, True),
    ("build/", "build", False, False), ("doc/frotz", "doc/frotz", False, True), ("doc/frotz", "a/doc/frotz", False, False),
    ("**/foo", "a/b/foo", False, True), ("**/foo/bar", "x/foo/bar", False, True), ("abc/**", "abc/x/y", False, True),
    ("a/**/b", "a/b", False, True), ("a/**/b", "a/x/y/b", False, True), ("file?.txt", "file1.txt", False, True),
    ("file?.txt", "file10.txt", False, False), ("[abc].py", "b.py", False, True), ("[!abc].py", "b.py", False, False),
    ("# comment\n\n", "# comment", False, False), ("\\#hash", "#hash", False, True),
    ("*.md\n!keep.md", "keep.md", False, False), ("*.md\n!keep.md", "drop.md", False, True),
    ("trailing   ", "trailing", False, True)])
def test_pattern_on_path_ignores(patterns, path, is_dir, expected):
    assert ignored(patterns, path, is_dir) is expected


def test_a_nested_gitignore_applies_below_its_directory_only():
    assert ignored("*.csv", "data/x.csv", False, "data") is True
    assert ignored("*.csv", "x.csv", False, "data") is False
    assert ignored("/out", "data/out", True, "data") is True


def test_the_walk_skips_git_and_ignored_directories_whose_files_a_negation_cannot_re_include(tmp_path):
    root = str(tmp_path)
    for rel in [".git/config", "venv/lib/x.py", "keep.py", "venv/keep.py", "sub/.gitignore", "sub/a.tmp", "sub/b.py"]:
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        with open(os.path.join(root, rel), "w") as f:
            f.write(rel)
    with open(os.path.join(root, ".gitignore"), "w") as f:
        f.write("venv/\n!venv/keep.py\n")
    with open(os.path.join(root, "sub", ".gitignore"), "w") as f:
        f.write("*.tmp\n")
    os.symlink(root, os.path.join(root, "loop"))
    assert list_files(root) == [".gitignore", "keep.py", "sub/.gitignore", "sub/b.py"]
