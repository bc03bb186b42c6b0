"""The built site, opened in headless Chromium from ``file://`` with the network cut off.

Build the site first (README, "Documentation"); without a build these tests skip, unless
``UNIGEN_REQUIRE_SITE=1`` (as in ``.ci/run``, which builds the site before running them), when
a missing site, browser or Playwright fails them instead. Chromium is Debian's ``chromium``
(``CHROMIUM=PATH`` for another), driven by Playwright without a browser download of its own.

Each page (the index, the lecture map, one API page and every notebook) is loaded with every
request that is not ``file://`` refused and recorded, then checked: MathJax has typeset every
math element (no ``mjx-merror``, no raw ``$$``, ``\\(`` or ``\\[`` left in the text outside code),
every image has loaded (on a notebook's page at least as many as its executed copy has figures),
and the console shows no error.
Full-page screenshots go to ``docs/_build/screenshots/`` to look at.
"""

import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "docs" / "_build" / "html"
SCREENSHOTS = ROOT / "docs" / "_build" / "screenshots"
REQUIRED = os.environ.get("UNIGEN_REQUIRE_SITE") == "1"

# page -> (at least this many typeset formulas, at least this many images)
PAGES = {
    "index.html": (0, 0),
    "lecture_map.html": (40, 0),
    "api/generated/algebra.html": (20, 0),
}
# Every notebook's page: at least this many typeset formulas, and at least as many images as the
# executed copy the site was built from has figures (each image output must load on the page).
NOTEBOOK_MATH = {  # about a third of the $...$ and $$...$$ spans in each notebook's Markdown
    "00_quickstart": 8,
    "01_belief_nets_and_wake_sleep": 25,
    "02_objective_algebra": 40,
    "03_gans_and_the_unified_view": 20,
    "04_gradient_estimators": 15,
    "05_transferring_techniques": 15,
}
EXECUTED = ROOT / "docs" / "_build" / "executed"


def _figures(stem: str) -> int:
    """The image outputs of the executed copy of notebook ``stem`` (0 when there is none)."""
    copy = EXECUTED / f"{stem}.ipynb"
    if not copy.is_file():
        return 0
    notebook = json.loads(copy.read_text(encoding="utf-8"))
    return sum(1 for cell in notebook["cells"] if cell["cell_type"] == "code"
               for output in cell.get("outputs", []) if "image/png" in output.get("data", {}))


PAGES.update({f"notebooks/{stem}.html": (least, None) for stem, least in NOTEBOOK_MATH.items()})

_INSPECT = r"""
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  for (const image of document.images) { image.loading = "eager"; }
  await Promise.all(Array.from(document.images, (image) => image.complete ? null :
    new Promise((done) => { image.addEventListener("load", done); image.addEventListener("error", done); })));
  const skip = new Set(["PRE", "CODE", "SCRIPT", "STYLE", "TEXTAREA", "MJX-CONTAINER"]);
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    let inside = false;
    for (let up = node.parentElement; up; up = up.parentElement) {
      if (skip.has(up.tagName)) { inside = true; break; }
    }
    const text = node.textContent;
    if (!inside && (text.includes("$$") || text.includes("\\(") || text.includes("\\["))) {
      raw.push(text.trim().slice(0, 120));
    }
  }
  const math = Array.from(document.querySelectorAll(".math"));
  return {
    mathjax: Boolean(window.MathJax && MathJax.version),
    typeset: document.querySelectorAll("mjx-container").length,
    untypeset: math.filter((element) => !element.querySelector("mjx-container")).map((e) => e.textContent.slice(0, 120)),
    errors: Array.from(document.querySelectorAll("mjx-merror"), (e) => e.textContent.slice(0, 120)),
    raw: raw,
    images: document.images.length,
    broken: Array.from(document.images).filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.src),
  };
}
"""


def _need(condition: bool, reason: str) -> None:
    if not condition:
        if REQUIRED:
            pytest.fail(reason + " (UNIGEN_REQUIRE_SITE=1)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    _need((SITE / "index.html").is_file(), f"no site at {SITE}: build it first (README, Documentation)")
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    _need(executable is not None, "no chromium on PATH: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "playwright is not installed: pip install -e '.[docs]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_renders_offline(browser, name):
    least_math, least_images = PAGES[name]
    if least_images is None:  # a notebook page: every figure of its executed copy
        least_images = _figures(Path(name).stem)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console, outside = [], []
    page.on("console", lambda message: message.type == "error" and console.append(message.text))
    page.on("pageerror", lambda error: console.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda request: request.url.startswith("file:") and console.append(
        f"failed: {request.url}"))

    def refuse(route):
        outside.append(route.request.url)
        route.abort()

    page.route(lambda url: not url.startswith("file:"), refuse)
    page.goto((SITE / name).as_uri(), wait_until="load")
    found = page.evaluate(_INSPECT)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / (name.replace("/", "_").removesuffix(".html") + ".png")),
                    full_page=True)
    page.close()

    assert not outside, f"{name} asked the network for {outside[:5]}"
    assert not console, f"{name}: console errors {console[:5]}"
    assert found["mathjax"] or not least_math, f"{name}: MathJax did not load"  # loaded where math is
    assert found["typeset"] >= least_math, f"{name}: {found['typeset']} formulas typeset, expected ≥ {least_math}"
    assert not found["untypeset"], f"{name}: math left untypeset: {found['untypeset'][:3]}"
    assert not found["errors"], f"{name}: MathJax could not parse: {found['errors'][:3]}"
    assert not found["raw"], f"{name}: raw TeX delimiters in the text: {found['raw'][:3]}"
    assert found["images"] >= least_images, f"{name}: {found['images']} images, expected ≥ {least_images}"
    assert not found["broken"], f"{name}: images that did not load: {found['broken'][:5]}"


def test_every_notebook_page_is_checked():
    found = sorted(path.stem for path in (ROOT / "notebooks").glob("*.ipynb"))
    assert found == sorted(NOTEBOOK_MATH), f"notebooks without a page check in NOTEBOOK_MATH: {found}"
