"""The documentation site builds in strict mode: a warning (a broken link, anchor or API
reference) fails it. Also checks what the build hooks generate."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from sparsegrow import recipes

REPO = Path(__file__).resolve().parents[2]


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_site_builds_strictly_with_the_generated_pages(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr
    page = (tmp_path / "recipes" / "index.html").read_text()
    for name in recipes.names():
        assert f'id="{name}"' in page and f"recipes.{name}(**overrides)" in page
    api = (tmp_path / "api" / "index.html").read_text()
    assert "free_new_units" in api and ":class:" not in api


def test_recipes_section_links_each_recipe_to_its_results_tables():
    text = _hooks().recipes_markdown()
    assert "[table 7](results.md#7-what-growth-adds)" in text
    assert "[table 3](results.md#3-class-incremental-split-mnist-5)" in text
    assert text.count("\n## ") + text.startswith("## ") == len(recipes.names())


def test_a_plot_not_drawn_is_named_not_linked():
    hooks = _hooks()
    drawn = "[a](results/permuted_mnist_10/plots/missing_plot.png)"
    out = hooks.PLOT_LINK.sub(hooks._plot_link, drawn)
    assert out == ("a (`results/permuted_mnist_10/plots/missing_plot.png`, not drawn: run "
                   "`sparsegrow report`)")


def test_the_results_page_links_only_plots_that_exist():
    """A fresh clone has no plots (they are drawn, not committed): the results page, RESULTS.md
    itself, must then name them instead of linking them (a strict build fails on a dead link)."""
    from types import SimpleNamespace

    hooks = _hooks()
    page = SimpleNamespace(file=SimpleNamespace(src_uri="results.md"))
    out = hooks.on_page_markdown((REPO / "docs" / "results.md").read_text(), page)
    assert "## Targets" in out
    assert all((REPO / target).is_file() for _, target in hooks.PLOT_LINK.findall(out))
