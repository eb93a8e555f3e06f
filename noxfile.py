"""Automation: ``nox -s tests`` is the README's test command (lint, types, the whole suite with
coverage); ``.ci/run`` runs it and the other Pythons, the lowest dependencies and the package.

Sessions:

- ``tests``: ruff, mypy --strict, then every test on asyncio and trio, measuring coverage
  (failing below the floor in pyproject.toml, and listing the modules below it).
- ``suite-3.10`` ... ``suite-3.13``: the suite on one Python, on asyncio, without the ``slow``
  multi-process tests (``tests`` runs those); pytest arguments after ``--`` replace that.
- ``lowest``: the suite with the lowest version of every dependency that the metadata allows,
  so the floors in pyproject.toml are true (uv resolves them: pip cannot).
- ``package``: build the sdist and the wheel, ``twine check`` them, and check what the wheel
  and the sdist hold.
- ``lint``, ``typecheck``, ``bench``, ``demo``.
"""

from __future__ import annotations

import json
import os
import pathlib
import tarfile
import zipfile

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
# A missing Python is skipped on a developer's machine, and fails under CI=true (nox's default).

PYTHON = ["3.10", "3.11", "3.12", "3.13"]
#: The oldest supported Python: where the lowest dependencies are tried (newer Pythons often
#: have no wheels for old releases).
OLDEST = PYTHON[0]
CHECKED = ["agile_async", "tests", "benchmarks", "examples", "tools", "noxfile.py"]
#: Every extra: the tests cover all of them.
EXTRAS = "fast,http2,server,cli,trio,redis,redis-trio,otel"
PYPROJECT = nox.project.load_toml("pyproject.toml")
#: What the other Pythons and the lowest dependencies run: everything but the ``slow``
#: multi-process tests (Redis fleets of worker processes: they exercise processes and Redis
#: more than the Python or the library versions, and ``tests`` runs them on every CI run).
QUICK = ("-q", "-m", "not slow", "-p", "no:cacheprovider")
#: Test processes of the ``tests`` session: the machines this project is built on have two
#: cores (more processes than cores would only make the timing-bound tests wait).
WORKERS = 2
#: What a user installs: the package and its type information (and, checked apart, the licence).
WHEEL_MUST_HOLD = (
    "agile_async/__init__.py",
    "agile_async/py.typed",
    "agile_async/testing/_server.py",
)
#: What a packager rebuilds from: the package, its tests, the licence, the changelog.
SDIST_MUST_HOLD = ("pyproject.toml", "LICENSE", "README.md", "CHANGELOG.md", "tests/conftest.py")


def _install_dev(session: nox.Session, *groups: str) -> None:
    session.install("-q", "--upgrade", "pip")
    requirements = [r for g in groups or ("dev",) for r in _group(g)]
    session.install("-q", "-e", f".[{EXTRAS}]", *requirements)


def _group(name: str) -> tuple[str, ...]:
    """A dependency group of pyproject.toml (development only, never published)."""
    return tuple(nox.project.dependency_groups(PYPROJECT, name))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.install("-q", *_group("lint"))
    session.run("ruff", "check", *CHECKED)
    session.run("ruff", "format", "--check", *CHECKED)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests, the benchmarks and the examples."""
    _install_dev(session)
    session.run("mypy", "--strict")


@nox.session
def tests(session: nox.Session) -> None:
    """Lint, mypy --strict, then every test on asyncio and on trio, measuring coverage.

    The whole suite must keep coverage at ``fail_under`` (pyproject.toml: today's level);
    every module below it is listed. Arguments after ``--`` go to pytest (a partial run
    reports coverage without the floor).

    The tests run in ``WORKERS`` processes (pytest-xdist): on a 2-core machine the suite
    takes about half the time it takes in one. Coverage measures every Python process the
    suite starts (``patch = ["subprocess"]`` in pyproject.toml) and combines their data.
    """
    _install_dev(session)
    session.run("ruff", "check", *CHECKED)
    session.run("ruff", "format", "--check", *CHECKED)
    session.run("mypy", "--strict")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", f"--numprocesses={WORKERS}", *session.posargs)
    session.run("coverage", "combine", "-q")
    _coverage_report(session, enforce=not session.posargs)


def _coverage_report(session: nox.Session, *, enforce: bool) -> None:
    """The modules below the floor, then the total, failing the session if it is below."""
    floor = float(PYPROJECT["tool"]["coverage"]["report"]["fail_under"])
    measured = pathlib.Path(session.create_tmp()) / "coverage.json"
    session.run("coverage", "json", "-q", "-o", str(measured), "--fail-under=0")
    files = json.loads(measured.read_text())["files"]
    below = sorted(f for f, data in files.items() if data["summary"]["percent_covered"] < floor)
    if below:
        session.log(f"{len(below)} of {len(files)} modules are below the {floor:g}% floor:")
        session.run(
            "coverage", "report", "--sort=cover", "--fail-under=0", f"--include={','.join(below)}"
        )
    floor_args = [] if enforce else ["--fail-under=0"]
    session.run("coverage", "report", "--format=total", *floor_args)


@nox.session(python=PYTHON)
def suite(session: nox.Session) -> None:
    """The suite on one Python, on asyncio, without the slow tests (missing interpreters are
    skipped, except under CI).

    asyncio only: what changes between Pythons is the standard library (asyncio, ssl,
    signals), and trio is the same package on each; ``tests`` and ``lowest`` run both
    backends. Set ``AGILE_TEST_BACKENDS=asyncio,trio`` for both here too.
    """
    _install_dev(session, "test")
    backends = os.environ.get("AGILE_TEST_BACKENDS", "asyncio")
    session.run("pytest", *(session.posargs or QUICK), env={"AGILE_TEST_BACKENDS": backends})


@nox.session(python=OLDEST)
def lowest(session: nox.Session) -> None:
    """The suite against the lowest version of every direct dependency the metadata allows.

    ``--resolution lowest-direct`` takes the floor of each dependency we declare (runtime,
    every extra, the test group) and the newest of what they pull in, which is what a user
    pinning our floors gets. A floor that fails here is raised in pyproject.toml.
    """
    session.install("-q", "uv")
    session.run(
        "uv", "pip", "install", "-q", "--resolution", "lowest-direct",
        "-e", f".[{EXTRAS}]", *_group("test"),
    )  # fmt: skip
    session.run("uv", "pip", "list")  # the versions tried, in the log
    session.run("pytest", *(session.posargs or QUICK))


@nox.session
def package(session: nox.Session) -> None:
    """Build the sdist and the wheel, ``twine check`` them, and check what they hold: the
    wheel has the package, its ``py.typed`` and the LICENSE, and no tests; the sdist has the
    tests, the LICENSE and the CHANGELOG."""
    session.install("-q", "build", "twine", "trove-classifiers")
    session.run("python", "-c", _KNOWN_CLASSIFIERS, *PYPROJECT["project"]["classifiers"])
    dist = pathlib.Path(session.create_tmp()) / "dist"
    session.run("python", "-m", "build", "--outdir", str(dist), silent=True)
    session.run("twine", "check", "--strict", *(str(p) for p in dist.iterdir()))
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    in_wheel = zipfile.ZipFile(wheel).namelist()
    with tarfile.open(sdist) as archive:
        in_sdist = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    problems = [
        *(f"the wheel lacks {name}" for name in WHEEL_MUST_HOLD if name not in in_wheel),
        *(f"the wheel holds {name}" for name in in_wheel if name.startswith("tests/")),
        *(f"the sdist lacks {name}" for name in SDIST_MUST_HOLD if name not in in_sdist),
    ]
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in in_wheel):
        problems.append("the wheel lacks the LICENSE")
    if problems:
        session.error("; ".join(problems))
    session.log(f"{wheel.name}: {len(in_wheel)} files; {sdist.name}: {len(in_sdist)} files")


#: Fails on a classifier PyPI would refuse (twine check does not look at them).
_KNOWN_CLASSIFIERS = """
import sys, trove_classifiers
unknown = sorted(set(sys.argv[1:]) - trove_classifiers.classifiers)
raise SystemExit(f"unknown classifiers: {unknown}" if unknown else None)
"""


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
    server = pathlib.Path(session.create_tmp()) / "provider"
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
    session.install("-q", "-e", ".", *_group("docs"))
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})
    session.run("python", "-m", "tools.docs_screenshots", "site", "site-screenshots")
