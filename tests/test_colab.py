"""The Colab path (issue 12): installing segedu in Colab upgrades nothing Colab already has.

Colab's published package lists are test data (tests/data/colab/, copied from googlecolab/backend-info
with their commit and date). These tests are cheap and offline: every requirement of pyproject.toml's
core (and of the ``coco`` extra, and environment.yml) must admit the version Colab has, and the
packages that FiftyOne's own requirements change are exactly the known ones. The real thing, pip's
dry-run report against an environment of Colab's versions and the numpy units run there, is the CI
stage ``python -m segedu.instructor.colab_versions``.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from segedu.instructor import colab_versions
from segedu.instructor.colab_versions import KNOWN_COCO_CHANGES, PINNED, read_freeze, report_changes, unadmitted

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "colab"
LISTS = ("pip-freeze.txt", "pip-freeze.gpu.txt")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# the versions COURSE.md ("Dependencies") and issue 12 quote from Colab's August 2026 list
QUOTED = {"numpy": "2.1.3", "scipy": "1.16.3", "matplotlib": "3.10.0", "scikit-image": "0.25.2",
          "scikit-learn": "1.6.1", "pycocotools": "2.0.11", "tqdm": "4.67.3", "ipywidgets": "7.7.1",
          "ipython": "7.34.0", "ipykernel": "6.17.1", "jupyter-client": "7.4.9", "notebook": "6.5.7"}


@pytest.fixture(scope="module", params=LISTS)
def colab(request):
    return read_freeze(DATA / request.param)


def test_the_lists_are_colabs_of_august_2026(colab):
    assert len(colab) > 600, "a whole pip freeze of Colab's runtime, not a hand-picked excerpt"
    assert {name: colab[name] for name in QUOTED} == QUOTED
    assert colab["torch"].startswith("2.11.0+") and colab["torchvision"].startswith("0.26.0+")
    readme = (DATA / "README.md").read_text()
    assert "googlecolab/backend-info" in readme and "2026-08-19" in readme
    assert "Python 3.13" in (DATA / "os-info.txt").read_text()


def test_every_core_requirement_admits_colabs_version(colab):
    problems = unadmitted(PYPROJECT["dependencies"], colab)
    assert not problems, "the setup cell would change Colab's packages: " + "; ".join(problems)


def test_the_coco_extra_admits_colabs_versions(colab):
    problems = unadmitted(PYPROJECT["optional-dependencies"]["coco"], colab, extras=("coco",))
    assert not problems, "; ".join(problems)


def test_environment_yml_admits_colabs_versions_of_the_core(colab):
    """The conda environment repeats the core's ranges; none may exclude Colab's. (Its dev and instructor
    tools, e.g. ipykernel>=6.25 for the test runner, are not installed in Colab and may be newer.)"""
    core = {colab_versions._name(Requirement(r).name) for r in PYPROJECT["dependencies"]}
    dependencies = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    specs = [d for d in dependencies if isinstance(d, str) and not d.startswith(("python", "pip"))]
    specs += [d for d in next(d["pip"] for d in dependencies if isinstance(d, dict)) if not d.startswith("-")]
    specs = [s for s in specs if colab_versions._name(Requirement(s).name) in core]
    assert len(specs) == len(core), f"environment.yml lists {specs}, the core is {sorted(core)}"
    problems = unadmitted(specs, colab)
    assert not problems, "; ".join(problems)


def test_the_checker_catches_an_upgrade():
    """The requirement that started issue 12 fails, and so does a package that pip would replace."""
    colab = read_freeze(DATA / "pip-freeze.txt")
    assert unadmitted(["ipywidgets>=8.0"], colab) == ["ipywidgets>=8.0 excludes Colab's ipywidgets 7.7.1"]
    assert unadmitted(["ipython>=8"], colab) and unadmitted(["numpy<2"], colab)
    assert unadmitted(["numpy<2; python_version < '3.12'"], colab) == [], "markers are Colab's (Python 3.13)"
    report = {"install": [
        {"metadata": {"name": "ipywidgets", "version": "8.1.9", "requires_dist": ["traitlets>=99"]}},
        {"metadata": {"name": "newthing", "version": "1.0", "requires_dist": ["Pillow>=12.2", "numpy>=1.20",
                                                                               "tqdm<4; extra == 'x'"]}},
        {"metadata": {"name": "jsonpatch", "version": "1.48", "requires_dist": ["jsonpointer>=3.8"]}},
    ]}
    changes = report_changes(report, colab, present={"ipywidgets", "pillow", "numpy", "tqdm"})
    assert set(changes) == {"ipywidgets", "pillow"}, changes   # Colab keeps its jsonpatch; extra 'x' not asked
    assert "8.1.9" in changes["ipywidgets"] and "newthing 1.0 requires Pillow>=12.2" in changes["pillow"]
    assert set(report_changes(report, colab, present=set())) == {"pillow"}


def _walk(start: str, colab: dict, extras=()) -> dict[str, str]:
    """Colab packages whose version the installed tree below ``start`` would change (offline).

    As pip in Colab: a package Colab has is kept (its own requirements are not followed) unless a
    requirement excludes it; a package Colab lacks is installed, so its requirements count.
    """
    changes, seen, todo = {}, set(), [(start, tuple(extras))]
    while todo:
        name, asked = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is not None and not any(
                    requirement.marker.evaluate({**colab_versions.COLAB_MARKERS, "extra": e}) for e in ("", *asked)):
                continue
            for problem in unadmitted([text], colab, asked):
                changes.setdefault(colab_versions._name(requirement.name), f"{name}: {problem}")
            dependency = colab_versions._name(requirement.name)
            if dependency not in colab:
                todo.append((dependency, tuple(requirement.extras)))
    return changes


def test_segedu_coco_changes_only_what_fiftyone_forces():
    """The installed segedu[coco] tree (this venv's FiftyOne) against Colab's list: segedu's own
    requirements change nothing; FiftyOne's change exactly KNOWN_COCO_CHANGES. The CI stage checks
    the same with pip's dry-run report of the FiftyOne that pip picks today."""
    pytest.importorskip("fiftyone")
    colab = read_freeze(DATA / "pip-freeze.txt")
    own = [r for r in PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["coco"]
           if colab_versions._name(Requirement(r).name) in colab]
    assert unadmitted(own, colab, ("coco",)) == []
    changes = _walk("fiftyone", colab)
    assert set(changes) == set(KNOWN_COCO_CHANGES), (
        f"FiftyOne {importlib.metadata.version('fiftyone')} changes {changes}; KNOWN_COCO_CHANGES lists "
        f"{sorted(KNOWN_COCO_CHANGES)}: update the list (with the reason) or the fiftyone range in pyproject.toml")


def test_the_stage_pins_what_the_numpy_units_use_and_ci_runs_it():
    colab = read_freeze(DATA / "pip-freeze.txt")
    assert set(QUOTED) <= set(PINNED) <= set(colab)
    ci = (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\ncolab-versions:"):].split("\n\n")[0]
    assert "-m segedu.instructor.colab_versions" in recipe
    assert "\nmake colab-versions" in ci
    assert ci.index("\nmake test") < ci.index("\nmake colab-versions")
