"""Griffe extension for the API reference: the docstrings use Sphinx cross-reference roles
(``:class:`FreezingPlugin```, as Avalanche does), which Markdown would print verbatim; they are
shown as inline code."""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)
