"""The code version that benchmarks and evaluation records carry: a checkout's short commit, marked where its
tracked files were changed; outside a git checkout the MTRL_CODE_VERSION environment variable, else 'unknown'.
And the short hash of a named revision, with a one-line error for one that git does not know."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mtrl import provenance


def _git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=directory, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(provenance, "CHECKOUT", tmp_path)
    provenance.code_version.cache_clear()
    yield tmp_path
    provenance.code_version.cache_clear()


def test_a_clean_checkout_is_its_commit_and_a_changed_one_says_so(checkout):
    _git(checkout, "init", "-q")
    (checkout / "module.py").write_text("x = 1\n")
    (checkout / "untracked.txt").write_text("not part of the code\n")
    _git(checkout, "add", "module.py")
    _git(checkout, "commit", "-q", "-m", "first")
    commit = _git(checkout, "rev-parse", "--short", "HEAD")
    assert provenance.code_version() == commit  # untracked files do not count
    (checkout / "notes.md").write_text("written by a benchmark\n")
    _git(checkout, "add", "notes.md")
    _git(checkout, "commit", "-q", "-m", "notes")
    commit = _git(checkout, "rev-parse", "--short", "HEAD")
    (checkout / "notes.md").write_text("rewritten by the next benchmark\n")
    provenance.code_version.cache_clear()
    assert provenance.code_version() == commit  # nor does the documentation

    (checkout / "module.py").write_text("x = 2\n")
    provenance.code_version.cache_clear()
    assert provenance.code_version() == f"{commit}+changes"


def test_outside_a_checkout_the_version_is_unknown(checkout, monkeypatch):
    monkeypatch.delenv("MTRL_CODE_VERSION", raising=False)
    assert provenance.code_version() == "unknown"


def test_outside_a_checkout_the_environment_can_name_the_code(checkout, monkeypatch):
    monkeypatch.setenv("MTRL_CODE_VERSION", "abc1234")
    assert provenance.code_version() == "abc1234"


def test_a_commit_is_named_by_its_short_hash_and_an_unknown_one_is_refused(checkout):
    _git(checkout, "init", "-q")
    (checkout / "module.py").write_text("x = 1\n")
    _git(checkout, "add", "module.py")
    _git(checkout, "commit", "-q", "-m", "first")
    assert provenance.short_commit("HEAD", checkout) == _git(checkout, "rev-parse", "--short", "HEAD")
    with pytest.raises(ValueError, match="git knows no commit 'no-such-branch'"):
        provenance.short_commit("no-such-branch", checkout)
