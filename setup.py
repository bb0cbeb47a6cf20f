"""Ships conf/ and sweeps/ inside the package, as ``bench/conf`` and ``bench/sweeps``.

Everything else is in pyproject.toml. The two folders stay at the repository root (where users edit
them); a regular ``pip install`` copies them into the package, where :mod:`bench.paths` finds them.
"""

from setuptools import find_packages, setup

SHIPPED = {"bench.conf": "conf", "bench.sweeps": "sweeps"}

setup(
    packages=[*find_packages(include=["bench", "bench.*"]), *SHIPPED],
    package_dir=SHIPPED,
    package_data={name: ["**/*.yaml", "*.md"] for name in SHIPPED},
)
