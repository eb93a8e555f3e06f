"""Look at the built site as a reader would: a few pages rendered by headless Chromium.

``python -m tools.docs_screenshots [SITE] [OUT]`` serves ``SITE`` (default ``site/``) on a
loopback port, has Chromium render the home page, a guide and an API reference page, saves a
screenshot of each in ``OUT`` (default ``site-screenshots/``) for a person to look at, and
checks the rendered DOM of each: the navigation is there, code blocks are highlighted, and
the reference page lists documented members, and no page shows a docstring's Sphinx role
(``:meth:``) as text. It exits 1 naming what is missing, and 0 with
a note when no Chromium is installed: it is an optional step of ``nox -s docs``, not a CI
requirement (the ``--strict`` build is).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PAGES", "Page", "chromium", "main", "problems_of"]

#: Flags for a headless run inside a container or CI box, with nothing fetched from outside.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--hide-scrollbars",
)
TIMEOUT = 120.0


@dataclass(frozen=True)
class Page:
    """A page to render, and what its rendered DOM must contain."""

    name: str
    path: str
    expect: tuple[str, ...]


PAGES = (
    Page("home", "", ('class="md-nav', "Where to start", "md-header")),
    Page("guide", "guides/batcher/", ('class="md-nav', 'class="highlight', "submit_many")),
    Page(
        "reference",
        "reference/agile_async/",
        ('class="md-nav', 'class="doc doc-heading"', "AgileClient", 'class="doc-signature'),
    ),
)


def chromium() -> str | None:
    """The Chromium executable on the PATH, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def serving(site: Path) -> Iterator[str]:
    """The site over HTTP on a free loopback port (links and assets resolve as deployed)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()
            thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log on the terminal."""


def _run(browser: str, *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
    return done.stdout


#: What no rendered page may show: a docstring's Sphinx role left as text.
REFUSED = (":meth:", ":class:", ":func:", ":attr:", ":exc:")


def problems_of(page: Page, dom: str) -> list[str]:
    """What the rendered page lacks, or shows that a reader should not see."""
    lacking = [
        f"{page.name}: no {needle!r} in the rendered page"
        for needle in page.expect
        if needle not in dom
    ]
    shown = [
        f"{page.name}: {needle!r} shown in the rendered page" for needle in REFUSED if needle in dom
    ]
    return lacking + shown


def main(argv: list[str]) -> int:
    site = Path(argv[0] if argv else "site")
    out = Path(argv[1] if len(argv) > 1 else "site-screenshots")
    browser = chromium()
    if browser is None:
        print("no chromium on the PATH: the screenshot check is skipped (optional)")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    with serving(site) as base:
        for page in PAGES:
            url = base + page.path
            shot = out / f"{page.name}.png"
            _run(browser, f"--screenshot={shot.resolve()}", "--window-size=1280,1600", url)
            if not shot.exists() or shot.stat().st_size < 10_000:
                problems.append(f"{page.name}: no screenshot (or a blank one) at {shot}")
            problems += problems_of(page, _run(browser, "--dump-dom", url))
            print(f"{page.name}: {url} -> {shot}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
