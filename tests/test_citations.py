"""Files that the package's docstrings and comments cite exist in the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = ("bench", "conf", "sweeps", "docs", "tests", "notebooks", ".ci")
# A repository path (``conf/method/kd.yaml``, ``docs/5_methods.md``) or any ``*.md`` name; a
# placeholder (``conf/method/<name>.yaml``) ends the path at the folder.
# Where a regular install puts conf/ and sweeps/ (setup.py copies them into the package).
INSTALLED = {"bench/conf", "bench/sweeps"}
CITATION = re.compile(rf"(?<![\w./-])((?:{'|'.join(re.escape(t) for t in TOP)})/[\w./-]*|[\w./-]+\.md)\b")


def citations() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "bench").rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for cited in CITATION.findall(line):
                found.setdefault(cited.rstrip("./"), []).append(f"{path.relative_to(ROOT)}:{n}")
    return found


def test_cited_files_exist():
    found = citations()
    assert "docs/5_methods.md" in found and "sweeps/README.md" in found  # the scan sees citations
    missing = {
        cited: where
        for cited, where in found.items()
        if cited not in INSTALLED and not (ROOT / cited).exists()
    }
    assert not missing, f"cited but not in the repository: {missing}"


def test_the_scan_catches_a_missing_file():
    assert not (ROOT / "kd_methods.md").exists()
    assert CITATION.findall("kd_methods.md §7.1; see conf/method/<name>.yaml") == [
        "kd_methods.md",
        "conf/method",
    ]
