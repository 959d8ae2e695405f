"""The course website (``make site``): every executed lecture as a web page, and a home page.

The lectures are committed without outputs, so a lecture opened on GitHub shows no figure. This
module publishes the *executed* lectures instead: one page per lecture with its figures, captions
and maths, and a home page with the unit table, each page linking to its Colab version and its
exercise. The pages are made by nbconvert's ``HTMLExporter`` (the "lab" template, the look of
JupyterLab) with a small template extension that adds the navigation bar; nothing is written as
HTML by hand, and the home page is itself a Markdown notebook converted the same way.

Where the executed lectures come from. ``make course`` (and the test suite's notebooks stage)
already run every lecture; :func:`segedu.instructor.course.run_lectures` saves each executed
notebook to ``build/executed/lectures/NN_slug.ipynb`` with a fingerprint of what it ran, the lecture
and segedu's code and package data, in ``metadata.segedu.fingerprint`` (:func:`save_executed`,
:func:`lecture_fingerprint`). ``make site`` uses an executed lecture only while that fingerprint
matches the lecture and the package on disk; it runs the missing or stale ones itself
through the same ``run_lectures`` and says so (``--no-run`` makes them an error instead).

Offline, and publishable as it is. The site loads nothing from the network: MathJax 2.7 comes from
the ``jupyter-server-mathjax`` wheel (copied to ``_static/mathjax/``), the "Open in Colab" badge is
an SVG of our own in ``_static/``, figures are embedded in the pages (``data:`` URIs), and the
template drops the require.js, widget and mermaid scripts that nbconvert would fetch from CDNs.
Every link between pages is relative, so the folder works from a file server, a sub-path or a USB
stick. The build refuses to finish if a page still names a remote resource (:func:`remote_resources`);
links (``<a href>``) to Colab and GitHub are of course fine.

Publishing on GitHub Pages. ``build/site/`` is the whole site, and it contains a ``.nojekyll`` file
so that Pages serves the ``_static/`` folder (Jekyll would hide folders starting with ``_``).
Either push the folder's content to a ``gh-pages`` branch (Settings > Pages > Deploy from a branch),
for instance with ``git worktree add ../gh-pages gh-pages``, copy ``build/site/.`` into it, commit
and push; or, from a GitHub Actions workflow, build it and publish it with
``actions/upload-pages-artifact`` (``path: build/site``) followed by ``actions/deploy-pages``
(Settings > Pages > Source: GitHub Actions). Building needs the lectures to run, so the workflow
runs ``make site`` (after ``make course`` if both run there).

Usage::

    python -m segedu.instructor site [--out build/site] [--executed build/executed/lectures] [--no-run]
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import html
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import _course
from .._units import UNITS, Unit

#: where ``make course`` and the notebooks test stage save the executed lectures, under the root
EXECUTED_LECTURES = Path("build") / "executed" / "lectures"
#: where ``make site`` writes the site, under the root
SITE = Path("build") / "site"
#: the output types that are figures: each must appear on its page as an image
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
#: the badge image the lectures' first cell (and the README) show, which the site bundles instead
COLAB_BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
STATIC = "_static"
#: the bundled MathJax 2.7 has the HTML-CSS output with the STIX web fonts (no CommonHTML output):
#: its combined configuration, and the Safe extension since lecture text is rendered as HTML
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
#: a file the build writes into the site folder, so that a rebuild may empty that folder and no other
MARKER = ".segedu-site"


class SiteError(Exception):
    """The site cannot be built; the message says what to do."""


# ----------------------------------------------------------------------------- executed lectures

def lecture_fingerprint(path: Path) -> str:
    """What a lecture's outputs depend on: the SHA-256 of its file and of segedu's code and package data
    (a changed reference implementation or checkpoint changes the figures too)."""
    return hashlib.sha256(Path(path).read_bytes() + _segedu_fingerprint().encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def _segedu_fingerprint() -> str:
    """segedu's Python files, checkpoints and data files (not the release manifest, which `make release`
    rewrites after `make course` has run the lectures, and which no lecture reads)."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package).as_posix()
        if path.is_file() and "__pycache__" not in relative and relative != "submission/releases.json" \
                and (path.suffix == ".py" or relative.startswith(("models/checkpoints/", "data/"))):
            digest.update(relative.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def save_executed(notebook, source: Path, folder: Path, seconds: float | None = None) -> Path:
    """Save an executed lecture to ``folder/<name of source>``, with the fingerprint of its source.

    The write is atomic (a temporary file in the same folder, then ``os.replace``): the test suite
    runs lectures in two processes, and ``make site`` must never read a half-written notebook.
    """
    import nbformat

    source, folder = Path(source), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    notebook = copy.deepcopy(notebook)
    notebook.metadata["segedu"] = {"source": source.name, "fingerprint": lecture_fingerprint(source)}
    if seconds is not None:
        notebook.metadata["segedu"]["seconds"] = round(seconds, 1)
    target = folder / source.name
    handle, temporary = tempfile.mkstemp(prefix=f".{source.stem}-", suffix=".ipynb", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            nbformat.write(notebook, stream)
        os.chmod(temporary, 0o644)   # mkstemp's 0600 would keep a CI artefact or a colleague out
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def executed_fingerprint(path: Path) -> str | None:
    """The source fingerprint recorded in an executed lecture, or None (no file, or not ours)."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("metadata", {}).get("segedu", {}).get("fingerprint")


def stale_lectures(root: Path, executed: Path, units=UNITS) -> list[Path]:
    """The lectures (source paths) whose executed copy in ``executed`` is missing or older than them."""
    root, executed = Path(root), Path(executed)
    return [root / unit.lecture for unit in units
            if executed_fingerprint(executed / f"{unit.name}.ipynb") != lecture_fingerprint(root / unit.lecture)]


# ----------------------------------------------------------------------------- pages

#: The page template: nbconvert's "lab" template, less what it would fetch from CDNs, plus the bar.
PAGE_TEMPLATE = r"""
{%- extends 'index.html.j2' -%}
{#- require.js only serves widgets, which the pages replace by a note (_for_the_web); mermaid is unused -#}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
            processEscapes: true, processEnvironments: true},
  TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               // MathJax's placeholder font is url('about:blank'), which Chromium refuses with a console
               // error; a local() name that no system has fails the same way, silently
               styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}},
  displayAlign: "center",
  messageStyle: "none"
});
</script>
<script src="{{ resources.mathjax_url }}"></script>
{%- endblock html_head_js_mathjax -%}
{%- block extra_css -%}
<link rel="icon" href="{{ resources.segedu.static }}/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{{ resources.segedu.static }}/site.css">
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
<nav class="segedu-bar" aria-label="course">
  <a class="segedu-home" href="index.html">{{ resources.segedu.course | e }}</a>
  {%- for link in resources.segedu.links %}
  <span class="segedu-item">{% if link.label %}<span class="segedu-label">{{ link.label | e }}</span> {% endif -%}
  {%- for text, href, badge in link.targets -%}
  <a href="{{ href | e }}"{% if badge %} class="segedu-badge"{% endif %}>
    {%- if badge %}<img src="{{ resources.segedu.static }}/colab-badge.svg" alt="{{ text | e }}"
    width="117" height="20">
    {%- else %}{{ text | e }}{% endif %}</a>{% if not loop.last %} {% endif %}
  {%- endfor %}</span>
  {%- endfor %}
</nav>
{%- endblock body_header -%}
"""

SITE_CSS = """\
/* the navigation bar of the segedu course site (segedu/instructor/site.py) */
.segedu-bar {
  position: sticky; top: 0; z-index: 10;
  display: flex; flex-wrap: wrap; align-items: center; gap: 0.4em 1.4em;
  padding: 0.5em 1em; margin: 0 0 1em 0;
  background: #f4f5f7; border-bottom: 1px solid #d0d4da;
  font-family: var(--jp-ui-font-family, sans-serif); font-size: 14px;
}
.segedu-bar a { color: #0b5cad; text-decoration: none; }
.segedu-bar a:hover { text-decoration: underline; }
.segedu-home { font-weight: bold; }
.segedu-label { color: #555; }
.segedu-badge img { vertical-align: middle; }
/* MathJax's hidden MathML for screen readers styles blackboard-bold letters (mathbb) and the like
   with TeX web fonts that the bundled MathJax lacks (it has STIX-Web only): the browser would request
   them in vain, a 404 each. Nobody sees that MathML, so the page's own serif font does. */
.MJX_Assistive_MathML, .MJX_Assistive_MathML * { font-family: serif !important; }
.segedu-widget-note {
  margin: 0.3em 0; padding: 0.4em 0.8em; border-left: 3px solid #f9ab00; background: #fff8e5;
  font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px;
}
"""

#: An "Open in Colab" badge of our own (the usual one lives on colab.research.google.com, and the
#: site loads nothing from the network): 117 x 20, Colab's orange and grey.
COLAB_BADGE_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" aria-label="Open in Colab">
  <title>Open in Colab</title>
  <rect width="117" height="20" rx="3" fill="#555"/>
  <rect x="58" width="59" height="20" rx="3" fill="#f9ab00"/>
  <rect x="58" width="6" height="20" fill="#f9ab00"/>
  <g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">
    <text x="29" y="14">Open in</text>
    <text x="87.5" y="14" fill="#222">Colab</text>
  </g>
</svg>
"""

#: the tab's icon (a browser asks for /favicon.ico otherwise, a 404 on a static host): a segmented square
FAVICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">
  <rect width="32" height="32" rx="4" fill="#0072b2"/>
  <path d="M4 28 L4 14 Q12 6 18 14 T28 12 L28 28 Z" fill="#f9ab00"/>
</svg>
"""


def github_file_url(path: str) -> str:
    """A file of the repository on GitHub, at the release tag that the Colab links open too."""
    return f"{_course.github_url()}/blob/{_course.RELEASE}/{path}"


def page_name(unit: Unit) -> str:
    return f"{unit.name}.html"


def _exporter():
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"segedu_page.html.j2": PAGE_TEMPLATE})],
                            template_file="segedu_page.html.j2")
    exporter.mathjax_url = f"{STATIC}/mathjax/MathJax.js?config={MATHJAX_CONFIG}"
    # the template drops these scripts; empty URLs as well, so that nothing remote can slip back in
    exporter.require_js_url = ""
    exporter.widget_renderer_url = ""
    exporter.jupyter_widgets_base_url = ""
    exporter.mermaid_js_url = ""
    # it warns about every figure without alt text; _describe_figures gives them one after the export
    exporter.log = logging.getLogger("segedu.site.nbconvert")
    exporter.log.setLevel(logging.ERROR)
    return exporter


def _figures_of(cell) -> int:
    """How many figures a cell shows: its outputs that carry an image (a figure in two formats is one)."""
    return sum(1 for output in cell.get("outputs", []) if any(kind in output.get("data", {}) for kind in IMAGE_TYPES))


def image_outputs(notebook) -> int:
    """How many figures a notebook shows, each of which its page must show as an image."""
    return sum(_figures_of(cell) for cell in notebook.cells if cell.cell_type == "code")


#: what nbconvert's HTMLExporter writes on an image that has no alternative text (all of a notebook's figures)
NO_ALT = 'alt="No description has been provided for this image"'
_MARKUP = re.compile(r"[*_`$]")


def figure_descriptions(notebook) -> list[str]:
    """A short alternative text for each figure, in page order.

    A figure's caption is the Markdown cell right after it when that starts with "Figure" (bold or
    italic, as the lectures write them): its first sentence after the number, without markup.
    Figures captioned inside the image (``segedu.viz.add_caption``) or in the text get a generic one.
    """
    cells = notebook.cells
    found = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        count = _figures_of(cell)
        if not count:
            continue
        after = cells[index + 1].source if index + 1 < len(cells) and cells[index + 1].cell_type == "markdown" else ""
        text = " ".join(_MARKUP.sub("", after).split())
        caption = re.match(r"(Figure [\w.-]+)\s+(.+?[.!?])(\s|$)", text)
        description = (f"{caption.group(1)} {caption.group(2)}" if caption
                       else "A figure drawn by the code above; the text around it describes it.")
        found += [description[:300]] * count
    return found


def _describe_figures(page: str, notebook) -> str:
    """The page with each figure's ``alt`` text from :func:`figure_descriptions` (when they match up)."""
    descriptions = figure_descriptions(notebook)
    if page.count(NO_ALT) != len(descriptions):   # another image without alt: leave nbconvert's text
        return page
    parts = page.split(NO_ALT)
    return parts[0] + "".join(f'alt="{html.escape(text)}"' + part for text, part in zip(descriptions, parts[1:]))


def _title(notebook, fallback: str) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


#: what stands on a page in place of the lectures' sliders (segedu.viz.add_controls): they need a
#: kernel, and each lecture draws the static figure with their start values just above them
WIDGET_NOTE = ('<div class="segedu-widget-note">Interactive controls stand here in the notebook; they need a '
               'running Python. The figure above shows their start values: <a href="{colab}">open the lecture '
               'in Colab</a> to move them.</div>')
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _for_the_web(notebook, colab: str = ""):
    """A copy of an executed lecture ready to export: the Colab badge image bundled, and a note
    instead of each widget (nbconvert would show its text form, ``VBox(children=(FloatSlider(...``,
    or with the saved widget state load the widget manager from a CDN)."""
    notebook = copy.deepcopy(notebook)
    notebook.metadata.pop("widgets", None)
    badge = f"{STATIC}/colab-badge.svg"
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace(COLAB_BADGE_URL, badge)
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}):
                output["data"] = {"text/html": WIDGET_NOTE.format(colab=html.escape(colab))}
    return notebook


def _lecture_links(units, index: int) -> list[dict]:
    unit = units[index]
    links = [{"label": f"Lecture {unit.id}", "targets": [("Open in Colab", _course.colab_url(unit.lecture), True)]},
             {"label": f"Exercise {unit.id}", "targets": [("Open in Colab", _course.colab_url(unit.exercise), True),
                                                          ("on GitHub", github_file_url(unit.exercise), False)]}]
    if index > 0:
        before = units[index - 1]
        links.append({"label": "", "targets": [(f"\u2190 {before.id} {before.slug}", page_name(before), False)]})
    if index + 1 < len(units):
        after = units[index + 1]
        links.append({"label": "", "targets": [(f"{after.id} {after.slug} \u2192", page_name(after), False)]})
    return links


def _resources(title: str, links: list[dict]) -> dict:
    return {"metadata": {"name": title},
            "segedu": {"course": "segedu: image segmentation", "static": STATIC, "links": links}}


def home_notebook(units=UNITS):
    """The home page, as a Markdown notebook: a title, a short introduction and the unit table."""
    import nbformat

    badge = f"{STATIC}/colab-badge.svg"
    rows = ["| unit | topic | lecture | exercise |", "|---|---|---|---|"]
    for unit in units:
        topic = unit.title.replace("|", "\\|")
        lecture = f"[{unit.name}]({page_name(unit)}) [![Open in Colab]({badge})]({_course.colab_url(unit.lecture)})"
        exercise = (f"[![Open in Colab]({badge})]({_course.colab_url(unit.exercise)}) "
                    f"[on GitHub]({github_file_url(unit.exercise)})")
        rows.append(f"| {unit.id} | {topic} | {lecture} | {exercise} |")
    text = "\n".join([
        "# Image segmentation: the segedu course",
        "",
        "Each unit is a lecture and an autograded exercise. The lecture pages below are the lecture "
        "notebooks as they ran, with every figure; **Open in Colab** runs a notebook yourself in Google "
        "Colab (it installs the `segedu` package first), and the exercise is the notebook you hand in.",
        "",
        f"The notebooks, the `segedu` package and the instructions are on [GitHub]({_course.github_url()}).",
        "",
        *rows,
    ])
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_markdown_cell(text))
    notebook.metadata["title"] = "segedu: image segmentation"
    return notebook


# ----------------------------------------------------------------------------- remote resources

#: what makes a browser fetch something: src= and <link href=>, CSS url() and @import, JS import()
_FETCHES = (
    re.compile(r"""\bsrc\s*=\s*["']?\s*([^"'\s>]+)""", re.I),
    re.compile(r"""<link\b[^>]*\bhref\s*=\s*["']?\s*([^"'\s>]+)""", re.I),
    re.compile(r"""url\(\s*["']?\s*([^"')\s]+)""", re.I),
    re.compile(r"""@import\s+["']([^"']+)""", re.I),
    re.compile(r"""\bimport\(\s*["']([^"']+)""", re.I),
)
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)


def remote_resources(folder: Path) -> list[str]:
    """``file: url`` for every resource a page or style sheet of ``folder`` would fetch remotely.

    Anchors are links, not resources, and may point anywhere. ``data:`` URIs are local. MathJax's
    own scripts are the bundled copy; its configuration names no remote URL either.
    """
    found = []
    folder = Path(folder)
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".html", ".css", ".svg") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in _FETCHES:
            for match in pattern.finditer(text):
                url = html.unescape(match.group(1))
                if _REMOTE.match(url):
                    found.append(f"{path.relative_to(folder)}: {url}")
    return found


# ----------------------------------------------------------------------------- the build

@dataclass
class Summary:
    out: Path
    pages: list[str] = field(default_factory=list)
    images: dict[str, int] = field(default_factory=dict)    # page -> figures (image outputs) on it
    ran: list[str] = field(default_factory=list)            # lectures this build had to execute
    seconds: float = 0.0

    def line(self) -> str:
        ran = f", {len(self.ran)} lecture(s) executed for it" if self.ran else ", no lecture executed"
        return (f"site: {len(self.pages)} pages, {sum(self.images.values())} figures{ran}, "
                f"{self.seconds:.1f} s: {self.out / 'index.html'}")


def mathjax_folder() -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError as error:
        raise SiteError("make site needs MathJax from the jupyter-server-mathjax package: "
                        "pip install -e '.[instructor]' (or run `make site`, which installs it)") from error
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def _prepare_out(out: Path) -> None:
    """Empty ``out`` for a fresh build, but only if it is missing, empty, or an earlier site."""
    if out.exists():
        if not out.is_dir():
            raise SiteError(f"--out {out} is a file; give a folder for the site.")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise SiteError(f"--out {out} is a folder with other content; make site only replaces a folder it "
                            f"built itself (it has a {MARKER} file). Give an empty or new folder.")
        shutil.rmtree(out)
    out.mkdir(parents=True)


def build_site(root: Path, out: Path | None = None, executed: Path | None = None, run_missing: bool = True,
               units=UNITS, echo=print) -> Summary:
    """Build the site into ``out`` from the executed lectures in ``executed`` (see the module doc)."""
    import nbformat

    from .course import run_lectures

    start = time.perf_counter()
    root = Path(root).resolve()
    out = Path(out) if out else root / SITE
    executed = Path(executed) if executed else root / EXECUTED_LECTURES
    units = list(units)
    missing = [unit.lecture for unit in units if not (root / unit.lecture).is_file()]
    if missing:
        raise SiteError(f"lectures missing from {root}: {', '.join(missing)} (segedu/_units.py lists them)")
    summary = Summary(out)

    stale = stale_lectures(root, executed, units)
    if stale and not run_missing:
        raise SiteError(f"{len(stale)} executed lecture(s) missing or older than the lecture in {executed}: "
                        f"{', '.join(p.stem for p in stale)}. Run `make course` first (it saves every executed "
                        "lecture there), or build without --no-run to let make site execute them.")
    if stale:
        echo(f"executing {len(stale)} lecture(s) whose executed copy is missing or stale "
             f"(make course saves them to {executed}): {', '.join(p.stem for p in stale)}")
        runs = run_lectures(root, paths=stale, echo=echo, save_to=executed)
        failed = [f"{run.path.name}: {run.error}" for run in runs if run.error]
        if failed:
            raise SiteError("lectures failed, no site built:\n" + "\n".join(failed))
        summary.ran = [p.stem for p in stale]

    _prepare_out(out)
    static = out / STATIC
    shutil.copytree(mathjax_folder(), static / "mathjax")
    (static / "colab-badge.svg").write_text(COLAB_BADGE_SVG, encoding="utf-8")
    (static / "site.css").write_text(SITE_CSS, encoding="utf-8")
    (static / "favicon.svg").write_text(FAVICON_SVG, encoding="utf-8")

    exporter = _exporter()
    for index, unit in enumerate(units):
        notebook = nbformat.read(executed / f"{unit.name}.ipynb", as_version=4)
        body, _ = exporter.from_notebook_node(
            _for_the_web(notebook, _course.colab_url(unit.lecture)),
            resources=_resources(_title(notebook, unit.name), _lecture_links(units, index)))
        (out / page_name(unit)).write_text(_describe_figures(body, notebook), encoding="utf-8")
        summary.pages.append(page_name(unit))
        summary.images[page_name(unit)] = image_outputs(notebook)
    home_links = [{"label": "", "targets": [("the course on GitHub", _course.github_url(), False)]}]
    body, _ = exporter.from_notebook_node(home_notebook(units), resources=_resources("segedu", home_links))
    (out / "index.html").write_text(body, encoding="utf-8")
    summary.pages.insert(0, "index.html")

    remote = remote_resources(out)
    if remote:
        raise SiteError("the site would load these from the network (it must work offline); bundle them or "
                        "remove them from the lecture:\n" + "\n".join(remote))
    (out / ".nojekyll").write_text("", encoding="utf-8")   # GitHub Pages: serve _static/ as it is
    (out / MARKER).write_text("built by `make site` (segedu/instructor/site.py); rebuilt from scratch each time\n",
                              encoding="utf-8")
    summary.seconds = time.perf_counter() - start
    return summary


def main(root: Path, extra: list[str]) -> int:
    """``make site ARGS="..."``: build the site, print a summary line; 1 with the reason if it cannot."""
    parser = argparse.ArgumentParser(prog="segedu site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help=f"the site folder (default: <root>/{SITE})")
    parser.add_argument("--executed", type=Path, default=None,
                        help=f"the executed lectures (default: <root>/{EXECUTED_LECTURES}, "
                             "where make course saves them)")
    parser.add_argument("--run-missing", dest="run", action="store_true", default=True,
                        help="execute the lectures whose executed copy is missing or stale (the default)")
    parser.add_argument("--no-run", dest="run", action="store_false",
                        help="fail instead of executing missing or stale lectures")
    args = parser.parse_args(extra[1:] if extra[:1] == ["--"] else extra)
    try:
        summary = build_site(root, args.out, args.executed, run_missing=args.run,
                             echo=lambda line: print(line, flush=True))
    except SiteError as error:
        print(f"make site: {error}")
        return 1
    print(summary.line())
    return 0
