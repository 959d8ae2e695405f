"""The main job (`make course`) and the repository's invariants, on a temporary copy of the course."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from segedu.instructor import links
from segedu._units import UNITS, Unit
from segedu.instructor.course import course, graded_budget_s, layout_problems, run_lectures, stale_releases
from segedu.instructor.notebooks import ASSIGNMENT_ID, assignment_ids, execute_notebook, lecture_paths

ROOT = Path(__file__).resolve().parents[1]
COURSE_FILES = ("lectures", "solutions", "exercises", "nbgrader_config.py", "README.md")


def copy_course(target: Path) -> Path:
    for name in COURSE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        else:
            shutil.copy2(source, target / name)
    return target


def test_every_unit_of_the_table_has_its_files_and_nothing_is_unlisted():
    assert [u.name for u in UNITS] == sorted(u.name for u in UNITS), "keep segedu/_units.py in unit order"
    assert len({u.id for u in UNITS}) == len(UNITS)
    for unit in UNITS:
        assert ASSIGNMENT_ID.match(unit.name), unit.name
    assert layout_problems(ROOT) == []
    assert assignment_ids(ROOT) == [u.name for u in UNITS]


def test_layout_check_names_each_missing_file(tmp_path):
    course_copy = copy_course(tmp_path / "course")
    (course_copy / "tests").mkdir()   # test files are checked where the folder has tests
    (course_copy / "lectures" / "02_edges.ipynb").unlink()
    new_unit = Unit("12", "video", "video", modules=("segedu.models.video",), tests=("tests/test_video.py",),
                    kind="torch")
    problems = layout_problems(course_copy, UNITS + (new_unit,))
    assert "unit 02: its lecture lectures/02_edges.ipynb is missing" in problems
    assert "unit 12: its module segedu.models.video does not exist" in problems
    assert "unit 12: its solution solutions/12_video/12_video.ipynb is missing" in problems
    assert "unit 12: its exercise exercises/12_video/12_video.ipynb is missing" in problems
    assert "unit 12: its lecture lectures/12_video.ipynb is missing" in problems
    assert "unit 12: no graded functions for 12_video in segedu/grading/exercises.py" in problems
    assert any("tests/test_video.py is missing" in p for p in problems)
    assert "unit 02: its test file tests/test_edges.py is missing" in problems
    (course_copy / "tests").rmdir()
    (course_copy / "lectures" / "12_video.ipynb").write_text("{}")
    problems = layout_problems(course_copy)
    assert "12_video has notebooks but no row in segedu/_units.py" in problems
    assert not any("test file" in p for p in problems)


def test_budgets_come_from_the_unit_table():
    assert graded_budget_s("00_tasks_and_metrics") == 2.0 and graded_budget_s("05_fcn") == 5.0
    assert {u.kind for u in UNITS} <= {"numpy", "torch"}
    with pytest.raises(KeyError, match="no unit"):
        graded_budget_s("42_unknown")
    table = links.units_table()
    for unit in UNITS:
        assert f"| {unit.id} | {unit.title} |" in table


@pytest.mark.nbgrader
def test_stale_release_is_detected(tmp_path):
    course_copy = copy_course(tmp_path / "course")
    notebook_path = course_copy / "solutions" / "01_thresholding" / "01_thresholding.ipynb"
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells[0].source += "\n\nAn edit the release does not have yet."
    nbformat.write(notebook, notebook_path)
    assert stale_releases(course_copy, tmp_path / "work", ["00_tasks_and_metrics", "01_thresholding"]) \
        == ["01_thresholding"]


def test_colab_links_and_setup_cells_follow_the_setting():
    assert links.sync(ROOT, check=True) == []


def test_links_rewrite_setup_cells_and_badges(tmp_path, monkeypatch):
    course_copy = copy_course(tmp_path / "course")
    monkeypatch.setattr("segedu._course.REPOSITORY", "someone/fork")
    monkeypatch.setattr("segedu._course.RELEASE", "v9.8.7")
    assert links.sync(course_copy, check=True), "a changed setting must be reported"
    links.sync(course_copy)
    assert links.sync(course_copy, check=True) == []
    readme = (course_copy / "README.md").read_text()
    assert "colab.research.google.com/github/someone/fork/blob/v9.8.7/lectures/00_tasks_and_metrics.ipynb" in readme
    lecture = nbformat.read(course_copy / "lectures" / "01_thresholding.ipynb", as_version=4)
    assert any('"segedu @ git+https://github.com/someone/fork@v9.8.7"' in c.source for c in lecture.cells)
    for path in links.notebook_paths(course_copy):
        text = path.read_text()
        assert "github/segedu-course/segedu/blob" not in text, f"{path.name} keeps an old Colab badge"
        assert "@main" not in text and "/blob/main/" not in text, f"{path.name} still installs or links a branch"


def _setup_cell(path: Path) -> str:
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.source.startswith(links.SETUP_MARK)]
    assert len(cells) == 1, path
    return cells[0]


def test_release_tag_is_pyproject_version():
    import tomllib

    from segedu import _course

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert _course.RELEASE == f"v{version}", (
        f"segedu/_course.py RELEASE is {_course.RELEASE!r} but pyproject.toml's version is {version!r}: "
        "cut a release as the README says (bump both, then `make links` and `make release`)")


def test_released_exercises_are_stamped_with_the_release():
    """`make release` stamps segedu/_course.py's RELEASE into each exercise; the grader compares stamps."""
    from segedu import _course
    from segedu.instructor.nbgrader_run import release_of

    for unit in UNITS:
        stamp = release_of(nbformat.read(ROOT / unit.exercise, as_version=4))
        assert stamp == _course.RELEASE, f"{unit.exercise} is stamped {stamp!r}, not {_course.RELEASE}: run `make release`"


def test_setup_cells_install_the_tagged_release_with_the_extras_each_unit_imports(tmp_path, monkeypatch):
    """Unit 11's notebooks get segedu[coco] because lecture 11 imports fiftyone; a notebook that starts
    importing it moves its whole unit to segedu[coco]; the others install plain segedu, all at the tag."""
    course_copy = copy_course(tmp_path / "course")
    monkeypatch.setattr("segedu._course.RELEASE", "v9.8.7")
    extras = links.unit_extras(course_copy)
    assert extras["11"] == {"coco"}
    assert all(not found for unit, found in extras.items() if unit != "11"), extras
    # a lecture that starts using FiftyOne (as the helper of segedu.data.coco that starts it)
    lecture = course_copy / "lectures" / "03_regions.ipynb"
    notebook = nbformat.read(lecture, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("%matplotlib inline\nfrom segedu.data.coco import fiftyone_environment"))
    nbformat.write(notebook, lecture)
    links.sync(course_copy)
    assert links.sync(course_copy, check=True) == []
    coco = 'segedu[coco] @ git+https://github.com/segedu-course/segedu@v9.8.7"'
    plain = '"segedu @ git+https://github.com/segedu-course/segedu@v9.8.7"'
    for path in links.notebook_paths(course_copy):
        wanted = coco if path.name[:2] in ("03", "11") else plain
        assert wanted in _setup_cell(path), f"{path.relative_to(course_copy)}: {_setup_cell(path)}"
    setup = _setup_cell(course_copy / "exercises" / "00_tasks_and_metrics" / "00_tasks_and_metrics.ipynb")
    exec(compile(setup, "setup", "exec"), {})   # outside Colab the cell does nothing (and is valid Python)


def test_untouched_exercises_hold_no_solution_code():
    for assignment in assignment_ids(ROOT):
        text = (ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        assert "raise NotImplementedError()" in text


# the longest notebooks test first, so that make test's second process takes the others meanwhile
@pytest.mark.notebooks
@pytest.mark.nbgrader
def test_make_course_main_job(tmp_path, capsys):
    """`make course` on a copy: layout, release regenerated, solutions score full marks, untouched 0.

    The lectures, the other part of make course, run in test_lecture_executes. The self-check runs on
    one numpy and one torch unit: test_nbgrader_roundtrip grades every solution and untouched release
    through the same nbgrader calls, so checking all of them twice would only cost time.
    """
    course_copy = copy_course(tmp_path / "course")
    checked = ("00_tasks_and_metrics", "07_segnet")
    code = course(course_copy, tmp_path / "work", run_lecture_notebooks=False, assignments=checked)
    table = capsys.readouterr().out
    print(table)
    assert code == 0, table
    for assignment in checked:
        row = next(line for line in table.splitlines() if line.startswith(assignment[:2] + " "))
        assert assignment in row and "FAILED" not in row
    # the release make course regenerated is the one committed (the check of `make check-release`,
    # without generating every release a second time)
    assert stale_releases(ROOT, tmp_path, generated=course_copy / "exercises") == [], \
        "exercises/ is stale: run `make release`"


@pytest.mark.notebooks
@pytest.mark.parametrize("assignment", assignment_ids(ROOT))
def test_solution_notebook_executes(assignment):
    execute_notebook(ROOT / "solutions" / assignment / f"{assignment}.ipynb", timeout=120)


@pytest.mark.notebooks
@pytest.mark.parametrize("lecture", lecture_paths(ROOT), ids=lambda p: p.stem)
def test_lecture_executes(lecture):
    """The lecture part of `make course` (its run_lectures), one lecture per test so that make test's
    notebooks stage spreads them over both cores; make bench times them.

    The executed lecture is saved where `make course` saves it (build/executed/lectures/, with the
    fingerprint of its source), so that the browser stage builds the site without running it again."""
    from segedu.instructor.site import EXECUTED_LECTURES

    [run] = run_lectures(ROOT, paths=[lecture], save_to=ROOT / EXECUTED_LECTURES)
    assert run.error is None, run.error
    assert (ROOT / EXECUTED_LECTURES / lecture.name).is_file()


def test_generative_ai_policy_is_an_instructor_switch(tmp_path, monkeypatch):
    course_copy = copy_course(tmp_path / "course")
    policy_cells = lambda: [c.source for p in links.notebook_paths(course_copy)  # noqa: E731
                            for c in nbformat.read(p, as_version=4).cells
                            if c.cell_type == "markdown" and c.source.startswith("<!-- genai-policy -->")]
    assert policy_cells(), "the assignment states its generative-AI policy"
    monkeypatch.setattr("segedu._course.GENAI_POLICY", "forbidden")
    links.sync(course_copy)
    assert all("earns zero marks" in text for text in policy_cells())

