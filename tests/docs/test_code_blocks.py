"""Every code block of the README and the docs is run, with mktestdocs, or visibly marked.

The convention (docs/about-docs.md) is read from each fence's info string, parsed by
markdown-it: ``python`` and ``bash`` blocks run; ``{.python .skip}`` / ``{.bash .skip}`` are
not run; an included example script is run by its own test; ``yaml`` and ``text`` are data.
Anything else fails, so no block is skipped without a mark in the Markdown.
"""

import os
import re
import sys
from pathlib import Path

import pytest
import wandb
from markdown_it import MarkdownIt
from mktestdocs import check_md_file

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted((REPO / "docs").glob("**/*.md"))
README = REPO / "README.md"

RUN = {"python", "bash"}
NOT_RUN = {"{.python .skip}", "{.bash .skip}", "yaml", "text"}
# example scripts included with pymdownx.snippets, and the test that runs each
INCLUDED = re.compile(r'python title="(examples/[\w/]+\.py)"')
EXAMPLES_RUN_BY = {"examples/wandb_avalanche.py": "tests/logging/test_wandb_logger.py"}
# what the examples' argument parsers get: the README's quick try
QUICK_ARGV = ["--experiences", "2", "--train-subset", "256"]


def _documents():
    yield pytest.param(README, id="README.md")
    for page in PAGES:
        yield pytest.param(page, id=str(page.relative_to(REPO)))


def _fences(path: Path):
    return [t for t in MarkdownIt().parse(path.read_text()) if t.type == "fence"]


def test_the_docs_have_pages_with_blocks_of_each_kind():
    infos = {t.info for page in PAGES for t in _fences(page)}
    assert {"python", "bash", "{.bash .skip}"} <= infos


@pytest.mark.parametrize("path", _documents())
def test_every_block_is_run_or_marked(path):
    for fence in _fences(path):
        where = f"{path.name}:{fence.map[0] + 1}"
        included = INCLUDED.fullmatch(fence.info)
        if included:
            script = included.group(1)
            assert fence.content == f'--8<-- "{script}"\n', where
            assert (REPO / script).is_file(), where
            assert Path(script).name in (REPO / EXAMPLES_RUN_BY[script]).read_text(), where
        else:
            assert fence.info in RUN | NOT_RUN, (
                f"{where}: info string {fence.info!r}: use one of {sorted(RUN | NOT_RUN)} "
                f"(docs/about-docs.md)")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """An empty working folder, W&B offline, the virtual environment's commands on PATH."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    wandb.teardown()   # wandb settles its default folder (./wandb) once per process: here
    return tmp_path


@pytest.mark.parametrize("path", _documents())
def test_python_blocks_run_in_order(path, sandbox, monkeypatch):
    monkeypatch.setattr(sys, "argv", [path.name, *QUICK_ARGV])
    check_md_file(path, memory=True, lang="python")


@pytest.mark.parametrize("path", _documents())
def test_bash_blocks_run(path, sandbox, monkeypatch):
    monkeypatch.chdir(REPO)   # the commands are written for the repository's root
    check_md_file(path, lang="bash")
