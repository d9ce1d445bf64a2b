"""MkDocs hooks: the pages that are generated from the code and the result files at build time.

- ``recipes.md``: its ``<!-- recipes -->`` marker becomes the recipes of
  :mod:`sparsegrow.recipes` (the single definition; the page copies nothing by hand), each with
  links to the RESULTS.md tables that justify it.
- ``results.md`` includes RESULTS.md (written by ``sparsegrow report``), whose plot links point
  into ``results/``: the plots that exist are published with the site, and a link to a plot that
  has not been drawn (``sparsegrow report`` draws them) becomes its path as text, so the build
  says what is missing instead of failing on a broken link.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from markdown.extensions.toc import slugify
from mkdocs.structure.files import File

from sparsegrow import recipes

REPO = Path(__file__).resolve().parents[1]
RECIPES_MARKER = "<!-- recipes -->"
RESULTS_INCLUDE = '--8<-- "RESULTS.md"'
PLOT_LINK = re.compile(r"\[([^\]]+)\]\((results/[^)\s]+)\)")
log = logging.getLogger("mkdocs.hooks.sparsegrow")


def _results_anchors() -> dict[str, str]:
    """RESULTS.md table id ("7a", "Targets") → the anchor of its heading on the results page."""
    anchors = {}
    for heading in re.findall(r"^## (.+)$", (REPO / "RESULTS.md").read_text(), flags=re.M):
        table = heading.split(".", 1)[0] if re.match(r"\d+[a-z]?\. ", heading) else heading
        anchors[table] = slugify(heading, "-")
    return anchors


def _table_links(tables: tuple[str, ...], anchors: dict[str, str]) -> str:
    return ", ".join(f"[{t if t == 'Targets' else 'table ' + t}](results.md#{anchors[t]})"
                     for t in tables)


def recipes_markdown() -> str:
    """The recipes section of ``recipes.md``: an overview table, then one section each."""
    anchors = _results_anchors()
    rows = ["| Recipe | What it is | Evidence |", "|---|---|---|"]
    sections = []
    for name in recipes.names():
        recipe = recipes.get(name)
        rows.append(f"| [`{name}`](#{slugify(name, '-')}) | {recipe.summary} | "
                    f"{_table_links(recipe.tables, anchors)} |")
        sections.append(
            f"## {name}\n\n{recipe.summary}\n\n{recipe.usage}\n\n"
            f"**When to use it.** {recipe.when}\n\n"
            f"**Cost.** {recipe.cost}\n\n"
            f"**Evidence** ({_table_links(recipe.tables, anchors)}). {recipe.evidence}\n")
    return "\n".join(rows) + "\n\n" + "\n".join(sections)


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    if page.file.src_uri == "recipes.md":
        if RECIPES_MARKER not in markdown:
            raise ValueError(f"recipes.md lost its {RECIPES_MARKER} marker")
        return markdown.replace(RECIPES_MARKER, recipes_markdown())
    if page.file.src_uri == "results.md":
        # included here, not by pymdownx.snippets: snippets expand after this hook, too late
        # for the links to plots that a fresh clone has not drawn yet
        if markdown.strip() != RESULTS_INCLUDE:
            raise ValueError(f"results.md must be exactly {RESULTS_INCLUDE}")
        return PLOT_LINK.sub(_plot_link, (REPO / "RESULTS.md").read_text())
    return markdown


def _plot_link(match: re.Match) -> str:
    text, target = match.groups()
    if (REPO / target).is_file():
        return match.group(0)
    return f"{text} (`{target}`, not drawn: run `sparsegrow report`)"


def on_files(files, config, **kwargs):
    """Publish the result plots that RESULTS.md links to, from where ``sparsegrow report``
    wrote them, at the same relative path."""
    targets = {m.group(2) for m in PLOT_LINK.finditer((REPO / "RESULTS.md").read_text())}
    missing = 0
    for target in sorted(targets):
        if (REPO / target).is_file():
            files.append(File(target, str(REPO), config["site_dir"], config["use_directory_urls"]))
        else:
            missing += 1
    if missing:
        log.info("%d plots linked from RESULTS.md are not drawn; `sparsegrow report` draws "
                 "them", missing)
    return files
