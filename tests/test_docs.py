"""The documentation site builds with ``mkdocs build --strict``: a broken link, anchor or API
reference fails the suite, and every repository path the guides cite exists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = ("bench", "conf", "sweeps", "docs", "tests", "notebooks", ".ci")
# A repository path as the guides cite it in prose or code spans; where a placeholder (``<name>``,
# ``{a,b}``, ``*``) follows, the citation is the folder before it.
CITED = re.compile(rf"(?<![\w./-])((?:{'|'.join(re.escape(t) for t in TOP)})/[\w./-]*)(.?)")
# Where a regular install puts conf/ and sweeps/ (setup.py copies them into the package).
INSTALLED = {"bench/conf", "bench/sweeps"}


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(config.parent)}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_the_site_builds_strict(tmp_path):
    done = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr[-3000:]
    home = (tmp_path / "site" / "index.html").read_text()
    assert 'href="1_getting_started/#installing"' in home  # README.md is the home page, links rewritten
    assert (tmp_path / "site" / "api" / "trainer" / "index.html").is_file()
    assert not (tmp_path / "site" / "incoming").exists()  # drafts are not pages


def copy_of_the_site(tmp: Path) -> Path:
    """The repository's mkdocs.yml, README.md and docs/ in ``tmp``, the package beside them."""
    shutil.copytree(ROOT / "docs", tmp / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp / "mkdocs.yml")
    shutil.copy(ROOT / "README.md", tmp / "README.md")
    (tmp / "bench").symlink_to(ROOT / "bench")
    return tmp / "mkdocs.yml"


@pytest.mark.slow
@pytest.mark.parametrize(
    "page, broken, named",
    [
        ("docs/3_tuning_protocol.md", "[gone](4_statistics_and_budgets.md#no-such-part)", "no-such-part"),
        ("docs/6_datasets.md", "[gone](no_such_guide.md)", "no_such_guide.md"),
        ("README.md", "[gone](docs/no_such_guide.md)", "no_such_guide.md"),
        ("docs/api/trainer.md", "::: bench.engine.no_such_module", "bench.engine.no_such_module"),
    ],
)
def test_a_broken_link_or_reference_fails_the_build(tmp_path, page, broken, named):
    config = copy_of_the_site(tmp_path)
    with open(tmp_path / page, "a") as f:
        f.write(f"\n\n{broken}\n")
    done = mkdocs_build(config, tmp_path / "site")
    assert done.returncode != 0
    assert named in done.stderr


def cited_paths(text: str) -> set[str]:
    found = set()
    for path, after in CITED.findall(text):
        if after in ("<", "{", "*"):
            path = path.rsplit("/", 1)[0]
        found.add(path.rstrip("./"))
    return found


def test_paths_the_guides_cite_exist():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    missing = {
        f"{page.relative_to(ROOT)}: {path}"
        for page in pages
        for path in cited_paths(page.read_text())
        if path not in INSTALLED and not (ROOT / path).exists()
    }
    assert not missing, f"cited in the docs but not in the repository: {sorted(missing)}"


def test_the_scan_catches_a_missing_path():
    text = "see `bench/tune/gone.py`, `conf/train/<dataset>_teacher.yaml` and tests/methods/test_<term>.py"
    assert cited_paths(text) == {"bench/tune/gone.py", "conf/train", "tests/methods"}
    assert not (ROOT / "bench/tune/gone.py").exists()


EVERY_TERM = "### Every term: paper, official code, defaults, cost"


def terms_listed(text: str) -> dict[str, list[str]]:
    """The rows of the methods guide's every-term table: term → its other cells (stripped)."""
    section = text.split(EVERY_TERM, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if m := re.match(r"^\| `(\w+)` \|(.*)\|$", line):
            rows[m.group(1)] = [cell.strip() for cell in m.group(2).split("|")]
    return rows


def test_the_methods_guide_lists_every_term_with_paper_code_defaults_and_cost():
    from bench.methods import TERMS

    rows = terms_listed((ROOT / "docs" / "5_methods.md").read_text())
    names = {n for n in TERMS.names() if not n.startswith("_")}
    assert names - rows.keys() == set(), "add these terms to docs/5_methods.md's every-term table"
    assert rows.keys() - names == set(), "rows for terms that are not registered"
    incomplete = {name: cells for name, cells in rows.items() if len(cells) != 4 or not all(cells)}
    assert not incomplete, "each row needs paper, official code, defaults and cost"


def test_the_term_table_check_sees_a_missing_row_and_an_empty_cell():
    text = "\n".join(
        [
            EVERY_TERM,
            "| term | a | b | c | d |",
            "|---|---|---|---|---|",
            "| `kd` | p | c | d | 1 ms |",
            "| `fitnet` | p |  | d | 1 ms |",
            "## next",
            "| `at` | p | c | d | 1 ms |",
        ]
    )
    rows = terms_listed(text)
    assert set(rows) == {"kd", "fitnet"}  # `at` is below the section
    assert rows["fitnet"][1] == ""
