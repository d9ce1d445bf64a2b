"""Checks of model options as they come from YAML: a bad width is one ConfigError naming the
option, not a tensor-shape error from inside ``nn.Linear``."""

from __future__ import annotations

from sparsegrow.errors import ConfigError


def positive_width(value, option: str) -> int:
    """``value`` if it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{option} must be a positive integer, not {value!r}")
    return value


def positive_widths(value, option: str) -> tuple[int, ...]:
    """A list of widths (a single integer is a list of one)."""
    values = [value] if isinstance(value, int) else value
    try:
        return tuple(positive_width(v, f"{option} entries") for v in values)
    except TypeError:  # not iterable
        raise ConfigError(f"{option} must be a list of positive integers, not {value!r}") from None
