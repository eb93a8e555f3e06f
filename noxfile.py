"""Automation: ``nox -s tests`` is what CI runs (lint, types, then the suite on both backends)."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = False

PYTHON = ["3.10", "3.11", "3.12", "3.13"]
CHECKED = ["agile_async", "tests", "benchmarks", "examples", "noxfile.py"]


def _install_dev(session: nox.Session) -> None:
    session.install("-q", "--upgrade", "pip")
    session.install("-q", "-e", ".[dev]")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.install("-q", "ruff>=0.6")
    session.run("ruff", "check", *CHECKED)
    session.run("ruff", "format", "--check", *CHECKED)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests, the benchmarks and the examples."""
    _install_dev(session)
    session.run("mypy", "--strict")


@nox.session
def tests(session: nox.Session) -> None:
    """Lint, mypy --strict, then every test on asyncio and on trio."""
    _install_dev(session)
    session.run("ruff", "check", *CHECKED)
    session.run("ruff", "format", "--check", *CHECKED)
    session.run("mypy", "--strict")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def matrix(session: nox.Session) -> None:
    """The suite on every supported Python that is installed (skips the missing ones)."""
    _install_dev(session)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: each script prints a side-by-side table (figures go in the README).

    ``nox -s bench -- benchmarks/throughput.py --messages 50000`` runs one script with options.
    """
    _install_dev(session)
    session.install("-q", "httptools", "uvloop")  # the throughput benchmark's fast server
    if session.posargs:
        session.run("python", *session.posargs)
        return
    for script in ("benchmarks/segments.py", "benchmarks/throughput.py", "benchmarks/campaign.py"):
        session.run("python", script)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job in a fresh virtualenv: a whole sandbox campaign, then the quickstart."""
    session.install("-q", "-e", ".[fast,server,cli]")
    session.run("python", "-m", "agile_async", "demo", *session.posargs)
    session.run("python", "examples/quickstart.py")


@nox.session
def latency(session: nox.Session) -> None:
    """``client.send()`` against raw httpx in a virtualenv made with ``pip install .`` only
    (no extras: what a web app gets); the provider runs from a virtualenv of its own."""
    session.install("-q", ".")
    server = Path(session.create_tmp()) / "provider"
    session.run("python", "-m", "venv", "--clear", str(server))
    provider_python = str(server / "bin" / "python")
    session.run(
        provider_python, "-m", "pip", "install", "-q",
        "uvicorn", "httptools", "uvloop", "orjson", "trustme",
        external=True,
    )  # fmt: skip
    session.run("python", "benchmarks/latency.py", "--server-python", provider_python,
                *session.posargs)  # fmt: skip


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site: ``mkdocs build --strict`` (a warning, a broken link or anchor, a
    missing reference, a broken README link into the site fails it; see mkdocs.yml and
    tools/docs_hooks.py), then a look at the built site as a reader would.

    The look is optional: when Chromium is on the PATH, ``tools/docs_screenshots.py`` renders
    the home page, a guide and an API reference page headless, saves the screenshots in
    ``site-screenshots/`` and checks each rendered page for its navigation, highlighted code
    and documented members; without Chromium it says so and passes. The docs' code examples
    run in ``nox -s tests`` (tests/docs/test_doc_blocks.py).
    """
    session.install("-q", "-e", ".[docs]", "ruff>=0.6")
    session.run("ruff", "check", "tools")  # the docs tooling (mypy --strict covers it in tests)
    session.run("ruff", "format", "--check", "tools")
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})
    session.run("python", "-m", "tools.docs_screenshots", "site", "site-screenshots")
