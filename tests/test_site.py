"""`make site` without a browser: built from small hand-made executed lectures in a temporary course.

tests/browser/test_site.py opens the real site (the executed lectures) in Chromium.
"""

from __future__ import annotations

import base64
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from segedu import _course
from segedu._units import UNITS
from segedu.instructor import site

# a 2 x 1 PNG, red and blue (written out, so that no test depends on an image library)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAADUlEQVR4nGP4zwAE/wEHAAH/4iOeWQAAAABJRU5ErkJggg=="
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10">'
       '<rect width="20" height="10" fill="#0072b2"/></svg>')


def lecture(unit) -> nbformat.NotebookNode:
    """A small lecture in the course's style: title, Colab badge, maths, two figures with captions."""
    v4 = nbformat.v4
    notebook = v4.new_notebook()
    notebook.cells = [
        v4.new_markdown_cell(f"# Unit {unit.id}: {unit.slug}\n\n[![Open In Colab]({site.COLAB_BADGE_URL})]"
                             f"({_course.colab_url(unit.lecture)})"),
        v4.new_markdown_cell("A threshold $T$ gives $$S(x, y) = [I(x, y) > T].$$"),
        v4.new_code_cell("show_png()"),
        v4.new_markdown_cell("**Figure 1.** A red and a blue pixel."),
        v4.new_code_cell("show_svg()"),
        v4.new_markdown_cell("**Figure 2.** A blue rectangle."),
        v4.new_code_cell("print('the end')"),
    ]
    return notebook


def executed(notebook: nbformat.NotebookNode, unit_id: str) -> nbformat.NotebookNode:
    """The lecture as a kernel would have left it: a PNG, an SVG (the 00 one: both in one output)."""
    notebook = nbformat.from_dict(nbformat.reads(nbformat.writes(notebook), as_version=4))
    v4 = nbformat.v4
    png = {"image/png": PNG, "text/plain": "<Figure size 20x10 with 1 Axes>"}
    if unit_id == "00":
        png["image/svg+xml"] = SVG   # one figure in two formats is one image on the page
    # the lectures' sliders (segedu.viz.add_controls) come after the static figure, as a widget view
    slider = {"application/vnd.jupyter.widget-view+json": {"model_id": "a1", "version_major": 2, "version_minor": 0},
              "text/plain": "VBox(children=(FloatSlider(value=0.42, description='T'), Output()))"}
    notebook.cells[2].outputs = [v4.new_output("display_data", data=png), v4.new_output("display_data", data=slider)]
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    notebook.cells[4].outputs = [v4.new_output("display_data", data={"image/svg+xml": SVG})]
    notebook.cells[6].outputs = [v4.new_output("stream", name="stdout", text="the end\n")]
    return notebook


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course root with every unit's lecture, and their executed copies where make course saves them."""
    root = tmp_path_factory.mktemp("course")
    (root / "lectures").mkdir()
    for unit in UNITS:
        source = lecture(unit)
        nbformat.write(source, root / unit.lecture)
        site.save_executed(executed(source, unit.id), root / unit.lecture, root / site.EXECUTED_LECTURES, 1.0)
    return root


@pytest.fixture(scope="module")
def built(course):
    summary = site.build_site(course, run_missing=False, echo=lambda line: None)
    return summary


class Page(HTMLParser):
    """The parts of a page the tests look at: anchors, images (and whether they sit in an output)."""

    def __init__(self, text: str):
        super().__init__()
        self.links, self.images, self.output_images, self.output_alts = [], [], [], []
        self._stack: list[bool] = []   # per open div: inside an output area?
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        inside = bool(self._stack and self._stack[-1])
        if tag == "div":
            self._stack.append(inside or "jp-OutputArea-output" in (attrs.get("class") or ""))
        elif tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
            if inside:
                self.output_images.append(attrs.get("src", ""))
                self.output_alts.append(attrs.get("alt", ""))

    def handle_endtag(self, tag):
        if tag == "div" and self._stack:
            self._stack.pop()


def page(summary, name: str) -> Page:
    return Page((summary.out / name).read_text(encoding="utf-8"))


def test_every_lecture_gets_a_page_with_each_figure(built, course):
    assert built.pages == ["index.html"] + [f"{u.name}.html" for u in UNITS]
    assert built.ran == []
    for unit in UNITS:
        found = page(built, f"{unit.name}.html")
        assert len(found.output_images) == 2, (unit.name, found.output_images)
        assert built.images[f"{unit.name}.html"] == 2
        assert all(src.startswith("data:image/") for src in found.output_images)
    text = (built.out / "01_thresholding.html").read_text(encoding="utf-8")
    # captions and maths stay, for MathJax to render in the browser
    assert "Figure 1." in text and "A blue rectangle." in text
    assert "$$S(x, y) = [I(x, y) &gt; T].$$" in text or "$$S(x, y) = [I(x, y) > T].$$" in text
    # each figure's alternative text is the first sentence of its caption
    assert page(built, "01_thresholding.html").output_alts == ["Figure 1. A red and a blue pixel.",
                                                             "Figure 2. A blue rectangle."]
    # the sliders cannot move without a kernel: a note says where they can, and no widget script is left
    assert text.count("segedu-widget-note") == 1 and "Open the lecture in Colab" in text.replace("open", "Open")
    assert "widget-view+json" not in text and "widget-state+json" not in text
    # a figure saved in two formats (00) is one image, the SVG one (nbconvert's display priority)
    assert page(built, "00_tasks_and_metrics.html").output_images[0].startswith("data:image/svg+xml")


def test_nothing_is_loaded_from_the_network(built):
    # an independent scan of every built file (the build has its own check, site.remote_resources)
    fetches = re.compile(r"""(?:\bsrc\s*=|<link\b[^>]*\bhref\s*=|url\()\s*["']?\s*((?:https?:)?//[^"')\s>]+)""", re.I)
    remote = []
    for path in built.out.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".css", ".svg"):
            remote += [f"{path.name}: {url}" for url in fetches.findall(path.read_text(encoding="utf-8"))]
    assert remote == []
    for name in built.pages:
        text = (built.out / name).read_text(encoding="utf-8")
        assert "cdnjs" not in text and "unpkg" not in text and site.COLAB_BADGE_URL not in text
        assert f'src="{site.STATIC}/mathjax/MathJax.js?config=' in text
    assert (built.out / site.STATIC / "mathjax" / "MathJax.js").is_file()
    assert (built.out / site.STATIC / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert (built.out / ".nojekyll").is_file(), "GitHub Pages would hide _static/ without it"


def test_the_scan_catches_a_remote_resource(tmp_path):
    (tmp_path / "a.html").write_text('<a href="https://x.org/">ok</a><img src="data:image/png;base64,AA">'
                                     '<script src="https://cdn.example/x.js"></script>', encoding="utf-8")
    (tmp_path / "b.css").write_text("p { background: url('//fonts.example/f.woff'); }", encoding="utf-8")
    assert site.remote_resources(tmp_path) == ["a.html: https://cdn.example/x.js", "b.css: //fonts.example/f.woff"]


def _resolves(out: Path, page_name: str, href: str) -> bool:
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:   # another site, or a heading of this page
        return True
    return (out / Path(page_name).parent / unquote(parts.path)).is_file()


def test_home_page_has_every_unit_with_working_links(built):
    home = page(built, "index.html")
    colab = f"https://colab.research.google.com/github/{_course.REPOSITORY}/blob/{_course.RELEASE}"
    github = f"https://github.com/{_course.REPOSITORY}/blob/{_course.RELEASE}"
    for unit in UNITS:
        assert f"{unit.name}.html" in home.links, unit.name
        assert f"{colab}/lectures/{unit.name}.ipynb" in home.links
        assert f"{colab}/exercises/{unit.name}/{unit.name}.ipynb" in home.links
        assert f"{github}/exercises/{unit.name}/{unit.name}.ipynb" in home.links
    broken = [href for href in home.links + home.images if not _resolves(built.out, "index.html", href)]
    assert broken == []
    text = (built.out / "index.html").read_text(encoding="utf-8")
    assert all(unit.title.split(":")[0] in text for unit in UNITS)


def test_each_lecture_page_links_home_colab_exercise_and_neighbours(built):
    colab = f"https://colab.research.google.com/github/{_course.REPOSITORY}/blob/{_course.RELEASE}"
    for index, unit in enumerate(UNITS):
        found = page(built, f"{unit.name}.html")
        assert "index.html" in found.links
        assert f"{colab}/lectures/{unit.name}.ipynb" in found.links
        assert f"{colab}/exercises/{unit.name}/{unit.name}.ipynb" in found.links
        neighbours = [u.name for u in UNITS[max(index - 1, 0):index + 2] if u is not unit]
        assert [href[:-5] for href in found.links if href[:-5] in {u.name for u in UNITS}] == neighbours
        broken = [href for href in found.links + found.images
                  if not href.startswith("data:") and not _resolves(built.out, f"{unit.name}.html", href)]
        assert broken == [], unit.name


def test_the_badge_is_a_bundled_svg(built):
    svg = (built.out / site.STATIC / "colab-badge.svg").read_text(encoding="utf-8")
    assert svg.startswith("<svg") and "Open in" in svg and "Colab" in svg
    assert base64.b64decode(PNG)[:8] == b"\x89PNG\r\n\x1a\n"   # the test's own figure is a real PNG


def test_a_changed_lecture_is_stale_and_no_run_says_run_make_course(course, tmp_path, capsys):
    root = tmp_path / "course"
    shutil.copytree(course, root)
    assert site.stale_lectures(root, root / site.EXECUTED_LECTURES) == []
    changed = root / UNITS[1].lecture
    notebook = nbformat.read(changed, as_version=4)
    notebook.cells[1].source += " (edited)"
    nbformat.write(notebook, changed)
    (root / site.EXECUTED_LECTURES / f"{UNITS[3].name}.ipynb").unlink()
    assert site.stale_lectures(root, root / site.EXECUTED_LECTURES) == [changed, root / UNITS[3].lecture]

    assert site.main(root, ["--no-run", "--out", str(tmp_path / "out")]) == 1
    said = capsys.readouterr().out
    assert "run `make course` first" in said.lower() and UNITS[1].name in said and UNITS[3].name in said
    assert not (tmp_path / "out").exists()


def test_an_executed_notebook_of_someone_else_counts_as_stale(course, tmp_path):
    folder = tmp_path / "executed"
    folder.mkdir()
    unit = UNITS[0]
    nbformat.write(executed(lecture(unit), unit.id), folder / f"{unit.name}.ipynb")   # no fingerprint
    assert site.stale_lectures(course, folder, [unit]) == [course / unit.lecture]


def test_out_folder_with_other_content_is_left_alone(course, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious", encoding="utf-8")
    assert site.main(course, ["--no-run", "--out", str(out)]) == 1
    assert "other content" in capsys.readouterr().out
    assert (out / "thesis.tex").read_text(encoding="utf-8") == "precious"


def test_save_is_atomic_and_records_the_fingerprint(course, tmp_path):
    unit = UNITS[2]
    target = site.save_executed(lecture(unit), course / unit.lecture, tmp_path, 2.5)
    assert [p.name for p in tmp_path.iterdir()] == [f"{unit.name}.ipynb"]   # no temporary file left
    assert target.stat().st_mode & 0o644 == 0o644
    saved = nbformat.read(target, as_version=4)
    assert saved.metadata["segedu"]["fingerprint"] == site.lecture_fingerprint(course / unit.lecture)
    assert saved.metadata["segedu"]["seconds"] == 2.5


@pytest.mark.notebooks
def test_missing_lectures_are_executed_through_run_lectures(tmp_path, capsys):
    """A stale lecture runs in a real kernel and is saved with its fingerprint, then published."""
    unit = UNITS[0]
    root = tmp_path / "course"
    (root / "lectures").mkdir(parents=True)
    source = lecture(unit)
    source.cells[2].source = ("import base64\nfrom IPython.display import Image, display\n"
                              f"display(Image(data=base64.b64decode({PNG!r})))")
    source.cells[4].source = f"from IPython.display import SVG\ndisplay(SVG({SVG!r}))"
    nbformat.write(source, root / unit.lecture)
    summary = site.build_site(root, units=[unit], echo=print)
    said = capsys.readouterr().out
    assert "executing 1 lecture(s)" in said and unit.name in said
    assert summary.ran == [unit.name]
    assert site.stale_lectures(root, root / site.EXECUTED_LECTURES, [unit]) == []
    found = page(summary, f"{unit.name}.html")
    assert len(found.output_images) == 2 == summary.images[f"{unit.name}.html"]
    assert "the end" in (summary.out / f"{unit.name}.html").read_text(encoding="utf-8")
    assert said.count(f"lecture {unit.name}: ") == 1   # run_lectures' own progress line
