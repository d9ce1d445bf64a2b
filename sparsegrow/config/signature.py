"""Keyword sections (a benchmark's, a model's, each plugin's) checked against the structured
config hydra-zen builds from the function they are passed to, so that a keyword added to a
plugin's constructor needs no config change. Nothing is built here: no data is loaded."""

from __future__ import annotations

import functools
from dataclasses import fields
from typing import Callable

from hydra_zen import builds
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from sparsegrow.errors import ConfigError


@functools.lru_cache(maxsize=None)
def _schema(func: Callable, exclude: tuple[str, ...]):
    return builds(func, populate_full_signature=True, zen_exclude=exclude)


def _title(func: Callable) -> str:
    return getattr(func, "__qualname__", str(func))


def keywords(func: Callable, exclude: tuple[str, ...] = ()) -> list[str]:
    """The keywords ``func`` accepts (its signature's, less ``exclude``)."""
    return [f.name for f in fields(_schema(func, exclude)) if f.name != "_target_"]


def check_keyword(func: Callable, name: str, source, key: str) -> None:
    """Fail unless ``func`` accepts keyword ``name`` (at ``key``)."""
    if name not in keywords(func):
        raise ConfigError(f"{source}: {key}.{name}: unknown keyword of {_title(func)} "
                          f"(accepted: {', '.join(keywords(func))})")


def check_kwargs(func: Callable, kwargs: dict, source, key: str, *,
                 exclude: tuple[str, ...] = ()) -> None:
    """Fail on a keyword ``func`` does not accept, a value of the wrong type for its annotation,
    or a required keyword missing from ``kwargs`` (all that ``func`` will get but ``exclude``)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(_schema(func, exclude)), kwargs)
    except ConfigKeyError as err:
        raise ConfigError(f"{source}: {key}.{err.full_key}: unknown keyword of {_title(func)} "
                          f"(accepted: {', '.join(keywords(func, exclude))})") from None
    except OmegaConfBaseException as err:
        reason = str(err).splitlines()[0]
        raise ConfigError(f"{source}: {key}.{err.full_key}: {reason}") from None
    missing = sorted(OmegaConf.missing_keys(merged))
    if missing:
        raise ConfigError(f"{source}: {key}.{missing[0]}: required by {_title(func)} but "
                          f"missing")
