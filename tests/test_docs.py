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
