"""environment.yml (conda) and pyproject.toml (pip) must name the same packages and bounds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

# conda-forge spells a few packages differently from PyPI.
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}


def _split(requirement: str) -> tuple[str, str]:
    """('torch', '>=2.4') from 'torch>=2.4'; names are normalised as PyPI does."""
    requirement = requirement.split(";")[0].split("#")[0]  # drop environment markers, comments
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", requirement)
    assert m, requirement
    return re.sub(r"[-_.]+", "-", m.group(1)).lower(), m.group(2).replace(" ", "")


def _pyproject(repo: Path) -> dict[str, str]:
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return dict(_split(r) for r in reqs)


def _conda(repo: Path) -> dict[str, str]:
    env = yaml.safe_load((repo / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # the pip section: labutils itself, then PyPI-only packages
            pip = dep.get("pip", [])
            assert pip[-1:] == ["-e ."], "the pip section ends by installing labutils, editable"
            out.update(_split(r) for r in pip[:-1])
            continue
        name, bound = _split(dep)
        if name not in NOT_PACKAGES:
            out[CONDA_TO_PYPI.get(name, name)] = bound
    return out


def test_same_packages(repo: Path) -> None:
    pip, conda = _pyproject(repo), _conda(repo)
    assert sorted(pip) == sorted(conda), (
        f"only in pyproject: {sorted(set(pip) - set(conda))}; "
        f"only in environment.yml: {sorted(set(conda) - set(pip))}"
    )


def test_same_lower_bounds(repo: Path) -> None:
    pip, conda = _pyproject(repo), _conda(repo)
    differ = {n: (pip[n], conda[n]) for n in pip if n in conda and pip[n] != conda[n]}
    assert not differ, f"version bounds differ (pyproject, environment.yml): {differ}"


def test_installed_versions_meet_the_bounds(repo: Path) -> None:
    """The lower bounds are ones we tested: what is installed here must satisfy them."""
    from importlib.metadata import version

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    for name, bound in _pyproject(repo).items():
        installed = Version(version(name).split("+")[0])
        assert installed in SpecifierSet(bound), f"{name} {installed} does not satisfy {bound}"
