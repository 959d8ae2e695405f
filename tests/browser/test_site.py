"""``make site`` in a real browser: every page of the course website, as a student's Chromium shows it.

The site is built once for the module (:func:`segedu.instructor.site.build_site`) from the executed
lectures in ``build/executed/lectures/``, which the notebooks stage of ``make test`` (or ``make
course``) saved; lectures missing there or older than their source are executed first (about 5 min
for all twelve). It is served on 127.0.0.1 and headless Chromium opens the home page and every
lecture page. On each: no console error, no failed request and no request leaving the local server
(the site must work offline); every image loaded; as many figure images as the executed notebook
has image outputs; MathJax rendered every formula (no raw ``$$`` left in the text); the links to
the lecture in Colab and to the exercise (Colab and GitHub). Screenshots go to ``build/browser/``:
``site_home.png``, ``site_NN_slug.png`` (the top of each lecture) and ``site_01_thresholding_full.png``
(a whole page).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from segedu import _course
from segedu._units import UNITS
from segedu.instructor import site

REPO = Path(__file__).resolve().parents[2]
LOAD_TIMEOUT_MS = 60_000     # a lecture page is a few MB of embedded figures; MathJax typesets after load
FULL_PAGE = "01_thresholding"

# MathJax 2 fires the "End" startup hook after the first typesetting of the page (at once if it has)
MATHJAX_DONE = """() => new Promise(resolve => {
    if (!window.MathJax || !MathJax.Hub) { resolve(false); return; }
    MathJax.Hub.Register.StartupHook("End", () => resolve(true));
})"""
BROKEN_IMAGES = """() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
                                        .map(i => i.src.slice(0, 100))"""
FIGURES = "() => document.querySelectorAll('.jp-OutputArea-output img').length"
# each TeX script MathJax found, and whether it drew it (its "-Frame" element) without an error
MATHS = """() => [...document.querySelectorAll('script[type^="math/tex"]')].map(s => {
    const frame = document.getElementById(s.id + '-Frame');
    return {tex: s.textContent.slice(0, 80), drawn: !!frame, display: s.type.includes('mode=display'),
            error: !!(frame && frame.querySelector('.MathJax_Error, .merror'))};
})"""
MARKDOWN_TEXT = "() => [...document.querySelectorAll('.jp-RenderedMarkdown')].map(e => e.innerText).join('\\n')"
LINKS = "() => [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The site of the repository's lectures, built into a temporary folder."""
    return site.build_site(REPO, out=tmp_path_factory.mktemp("site") / "site", echo=print)


@pytest.fixture
def open_page(page, console_errors, serve_static, built):
    """``open_page(name)``: load a page of the site, wait for MathJax, and fail on any error so far."""
    base = serve_static(built.out)
    remote: list[str] = []
    page.on("request", lambda request: remote.append(request.url) if not request.url.startswith(base)
            and not request.url.startswith("data:") else None)
    missing: list[str] = []   # the console says "404", not which file
    page.on("response", lambda response: missing.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)

    def load(name: str):
        page.goto(base + name, wait_until="load", timeout=LOAD_TIMEOUT_MS)
        assert page.evaluate(MATHJAX_DONE), f"{name}: MathJax did not start (is _static/mathjax/ there?)"
        page.wait_for_load_state("networkidle", timeout=LOAD_TIMEOUT_MS)   # fonts MathJax asked for
        assert missing == [], f"{name}: files the site lacks"
        assert console_errors == [], f"{name}: {console_errors}"
        assert remote == [], f"{name} fetched from outside the site: {remote}"
        assert page.evaluate(BROKEN_IMAGES) == [], f"{name}: images that did not load"
        return page

    return load


def test_home_page_lists_every_unit(open_page, screenshot_dir):
    page = open_page("index.html")
    links = page.evaluate(LINKS)
    for unit in UNITS:
        assert f"{unit.name}.html" in links, unit.name
        assert _course.colab_url(unit.lecture) in links
        assert _course.colab_url(unit.exercise) in links
        assert f"{_course.github_url()}/blob/{_course.RELEASE}/{unit.exercise}" in links
    assert page.locator("table tbody tr").count() == len(UNITS)
    assert page.locator("img[alt='Open in Colab']").count() == 2 * len(UNITS)
    page.screenshot(path=str(screenshot_dir / "site_home.png"))

    # the links work: the home page to a lecture, the bar to the next one and back home
    page.get_by_role("link", name=UNITS[1].name, exact=True).click()
    page.wait_for_url(f"**/{UNITS[1].name}.html")
    page.locator(".segedu-bar").get_by_role("link", name=f"{UNITS[2].id} {UNITS[2].slug} \u2192").click()
    page.wait_for_url(f"**/{UNITS[2].name}.html")
    page.locator(".segedu-bar .segedu-home").click()
    page.wait_for_url("**/index.html")


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_lecture_page_shows_every_figure_and_formula(unit, open_page, built, screenshot_dir):
    page = open_page(f"{unit.name}.html")
    executed = nbformat.read(REPO / site.EXECUTED_LECTURES / f"{unit.name}.ipynb", as_version=4)
    figures = site.image_outputs(executed)
    assert figures > 0, f"{unit.name} draws no figure: is this the executed lecture?"
    assert page.evaluate(FIGURES) == figures

    maths = page.evaluate(MATHS)
    markdown = [cell.source for cell in executed.cells if cell.cell_type == "markdown"]
    assert bool(maths) == any("$" in text for text in markdown)
    # every $$...$$ of the text is a displayed formula (printed Markdown may add more)
    assert sum(m["display"] for m in maths) >= sum(text.count("$$") for text in markdown) // 2
    assert [m["tex"] for m in maths if not m["drawn"] or m["error"]] == []
    assert "$$" not in page.evaluate(MARKDOWN_TEXT), "a display formula was left as TeX"

    links = page.evaluate(LINKS)
    assert _course.colab_url(unit.lecture) in links
    assert _course.colab_url(unit.exercise) in links
    assert f"{_course.github_url()}/blob/{_course.RELEASE}/{unit.exercise}" in links
    assert "index.html" in links
    assert page.locator(".segedu-bar").is_visible()

    page.screenshot(path=str(screenshot_dir / f"site_{unit.name}.png"))
    if unit.name == FULL_PAGE:
        page.screenshot(path=str(screenshot_dir / f"site_{unit.name}_full.png"), full_page=True)
