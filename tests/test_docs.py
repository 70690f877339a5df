"""The documents point at what exists: every file they name, every link within them, every sweep file."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", "RESULTS.md", "BENCHMARKS.md"]
# a path into the repository's tracked folders; a glob or a placeholder (`mtsac_s*`, `<sweep>`) is checked up to it
REPO_PATH = re.compile(r"(?<![\w/.])((?:configs|docs|mtrl|tests|agents)/[\w/.\-]*[\w/])(?![\w*?{\[<])")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)
SECTION = re.compile(r"^##+ (.+)$", re.MULTILINE)
CODE_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def prose(document: str) -> str:
    """The document without its code blocks, whose shell comments would read as headings."""
    return CODE_BLOCK.sub("", (ROOT / document).read_text())


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_path_a_document_names_exists(document):
    text = (ROOT / document).read_text()
    named = {match.group(1) for match in REPO_PATH.finditer(text)}
    assert named, f"{document} names no file at all: the pattern has stopped matching"
    assert sorted(p for p in named if not (ROOT / p).exists()) == []


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_link_of_a_document_resolves(document):
    text = prose(document)
    anchors = {github_anchor(h) for h in HEADING.findall(text)}
    targets = [t for t in LINK.findall(text) if not t.startswith(("http://", "https://"))]
    assert [t for t in targets if t.startswith("#") and t[1:] not in anchors] == []
    assert [t for t in targets if not t.startswith("#") and not (ROOT / t).exists()] == []


def test_the_contents_of_the_results_list_every_section():
    text = prose("RESULTS.md")
    listed = {t[1:] for t in LINK.findall(text) if t.startswith("#")}
    sections = SECTION.findall(text)
    assert sections and [h for h in sections if github_anchor(h) not in listed] == []


def test_the_readme_lists_every_sweep_file():
    readme = (ROOT / "README.md").read_text()
    sweeps = sorted(p.name for p in (ROOT / "configs" / "sweeps").glob("*.yaml"))
    assert sweeps and [name for name in sweeps if f"`{name}`" not in readme] == []


def test_github_anchor_matches_githubs_rule():
    assert github_anchor("The preset's length: 60,000 steps") == "the-presets-length-60000-steps"
    assert github_anchor("The official protocol at the CPU preset (`mtsac` and `ntkmtl_sr`, five seeds each)") == \
        "the-official-protocol-at-the-cpu-preset-mtsac-and-ntkmtl_sr-five-seeds-each"
