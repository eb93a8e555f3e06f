"""MkDocs hooks: the README's links into the site are checked by the same ``--strict`` build.

MkDocs checks the links between the pages of ``docs/``; the README lives outside it (it is
the repository's front door on GitHub), so its relative links (``docs/guides/batcher.md``,
``docs/getting-started.md#quickstart``) are checked here, after the build, against the files
of the repository and the anchors of the built pages. A broken one fails the build.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

__all__ = ["broken_readme_links", "linked_roles", "on_page_content", "on_post_build"]

#: A Sphinx role as Markdown renders it from a docstring: ``:meth:`~agile_async.X.y```
#: becomes ``:meth:<code>~agile_async.X.y</code>``.
_ROLE = re.compile(
    r":(?:py:)?(?:meth|class|func|attr|exc|data|mod|obj|const):<code>(~?)([^<]*)</code>"
)

#: ``[text](target)``, not an image; the target up to the first space or parenthesis.
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


class _Ids(HTMLParser):
    """Every ``id`` of an HTML page: the anchors a link may name."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(value for name, value in attrs if name == "id" and value)


def _page_ids(html: Path) -> set[str]:
    parser = _Ids()
    parser.feed(html.read_text(encoding="utf-8"))
    return parser.ids


def _built_page(site: Path, docs: Path, page: Path) -> Path:
    """The HTML file MkDocs builds from ``page`` (``use_directory_urls``)."""
    relative = page.relative_to(docs).with_suffix("")
    if relative.name == "index":
        return site / relative.parent / "index.html"
    return site / relative / "index.html"


def broken_readme_links(readme: Path, docs: Path, site: Path) -> list[str]:
    """The README's relative links that lead nowhere: a missing file, or an anchor the built
    page does not have. Links to other sites are left to the reader's browser."""
    root = readme.parent
    problems = []
    for target in _LINK.findall(readme.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path, _, anchor = target.partition("#")
        file = (root / path).resolve()
        if not file.exists():
            problems.append(f"{target}: no such file")
            continue
        if not anchor:
            continue
        if not file.is_relative_to(docs.resolve()) or file.suffix != ".md":
            problems.append(f"{target}: an anchor is checked only in a page of docs/")
            continue
        if anchor not in _page_ids(_built_page(site, docs.resolve(), file)):
            problems.append(f"{target}: the page has no anchor #{anchor}")
    return problems


def linked_roles(html: str, module: str = "agile_async") -> str:
    """The docstrings' Sphinx roles as links into the reference, as Sphinx would make them.

    ``:meth:`~agile_async.X.y``` (which Markdown turns into ``:meth:<code>~...</code>``) would
    otherwise show the role before every name. Each becomes an optional cross-reference for
    mkdocs-autorefs, looked up as written under the page's module, then under
    ``agile_async``: a name it finds is a link, one it does not (a private helper) is plain
    code. ``~`` keeps the last name only in the text, as in Sphinx."""

    def link(found: re.Match[str]) -> str:
        target = found[2]
        shown = target.rsplit(".", 1)[-1] if found[1] else target
        code = f"<code>{shown}</code>"
        if target.startswith(".") or not target:
            return code
        if target.startswith("agile_async."):
            return f'<autoref identifier="{target}" optional>{code}</autoref>'
        return (
            f'<autoref identifier="{module}.{target}" slug="agile_async.{target}" optional>'
            f"{code}</autoref>"
        )

    return _ROLE.sub(link, html)


def on_page_markdown(markdown: str, page: Any, config: Any, **kwargs: Any) -> str:
    """The changelog page shows ``CHANGELOG.md`` (the one changelog, shipped in the sdist)."""
    if page.file.src_uri == "changelog.md":
        return (Path(config["docs_dir"]).parent / "CHANGELOG.md").read_text(encoding="utf-8")
    return markdown


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    """Each page's HTML, with the docstrings' roles made links (see :func:`linked_roles`);
    a reference page's module is its file's name (``reference/agile_async.sync.md``)."""
    source = Path(page.file.src_uri)
    module = source.stem if source.parts[0] == "reference" else "agile_async"
    return linked_roles(html, module)


def on_post_build(config: Any, **kwargs: Any) -> None:
    """Fail the build on a broken README link (MkDocs calls this after writing the site)."""
    docs = Path(config["docs_dir"])
    problems = broken_readme_links(docs.parent / "README.md", docs, Path(config["site_dir"]))
    if problems:
        raise PluginError("README.md: broken links into the site:\n  " + "\n  ".join(problems))
