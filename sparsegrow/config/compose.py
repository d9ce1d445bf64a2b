"""Hydra composes every config file over its schema, registered in Hydra's ConfigStore.

An experiment file is the primary config of ``[experiment schema, <file>]``; a strategy preset
is the option ``<name>`` of the config group that is its folder, over the preset schema.
Hydra reads the YAML, merges it onto the schema (unknown keys, wrong types and enum values
fail there) and applies the ``key=value`` overrides in its grammar. Its error, a few lines
(the config, the OmegaConf error, the full key, the object types), becomes one
:class:`ConfigError` line ``<file or command line>: <key>: <reason>``.

The composition goes through Hydra's config loader rather than ``hydra.compose``: that one
needs the process's global Hydra, which the launcher itself holds while a job runs.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Iterable

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from sparsegrow.config.schema import ExperimentConfig, PresetConfig
from sparsegrow.errors import ConfigError

EXPERIMENT_SCHEMA = "sparsegrow_experiment_schema"
PRESET_SCHEMA = "sparsegrow_preset_schema"
_PRIMARY = "sparsegrow_primary"
_FILE = "sparsegrow_file"

ConfigStore.instance().store(name=EXPERIMENT_SCHEMA, node=ExperimentConfig)
ConfigStore.instance().store(name=PRESET_SCHEMA, node=PresetConfig)

# what Hydra's composition error says after its first line: "<reason>\n    full_key: <key>"
_FULL_KEY = re.compile(r"^\s*full_key: ?(.*)$", re.MULTILINE)


class UnknownConfig(ConfigError):
    """The config file (or preset) to compose does not exist; ``options`` are its group's."""

    def __init__(self, message: str, options: list[str]):
        super().__init__(message)
        self.options = options


def _one_line(err: Exception, source, overrides_source: str) -> ConfigError:
    """Hydra's (or OmegaConf's, or the YAML parser's) error as ``<source>: <key>: <reason>``."""
    if isinstance(err, YAMLError):
        return ConfigError(f"{source}: not valid YAML ({' '.join(str(err).split())})")
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException):       # an override could not be applied
        key = getattr(cause, "full_key", "") or ""
        return ConfigError(f"{overrides_source}: {key}: {str(cause).splitlines()[0]}")
    text = str(err)
    if text.startswith("In '"):          # "In '<file>': <Error> raised while composing config:"
        lines = text.splitlines()
        reason = lines[1] if len(lines) > 1 else lines[0]
        found = _FULL_KEY.search(text)
        if found and found.group(1):
            return ConfigError(f"{source}: {found.group(1)}: {reason}")
        return ConfigError(f"{source}: {reason}")
    return ConfigError(f"{overrides_source}: {' '.join(text.split('See https')[0].split())}")


def compose(search_dir: Path, config, schema: str, overrides: Iterable[str] = (), *,
            source, overrides_source: str = "command line") -> DictConfig:
    """``config`` (a file's name in ``search_dir``, or a defaults-list entry ``{"<group>@<package>":
    <name>}`` naming the file ``<group>/<name>.yaml`` there) composed over the ConfigStore's
    ``schema``, with ``overrides`` in Hydra's grammar. Errors name ``source`` (the file) or
    ``overrides_source``; a missing config raises :class:`UnknownConfig`."""
    search_dir = str(Path(search_dir).resolve())
    group, name = next(iter(config.items())) if isinstance(config, dict) else ("", config)
    path = Path(search_dir, group.split("@")[0], f"{name}.yaml")
    # Hydra composes its own config too (a tenth of a second): a sweep composes the same
    # files many times, so the result is kept for the file's text and the overrides
    text = path.read_text() if path.is_file() else None
    return copy.deepcopy(_compose(search_dir, (group, name), schema, tuple(overrides), text,
                                  str(source), overrides_source))


@functools.lru_cache(maxsize=512)
def _compose(search_dir: str, config: tuple[str, str], schema: str, overrides: tuple[str, ...],
             text: str | None, source: str, overrides_source: str) -> DictConfig:
    group, name = config
    store = ConfigStore.instance()
    try:
        if group:
            entry = {group: name}
        else:
            # A lone file enters through the ConfigStore, not its folder: Hydra would take the
            # folder's subfolders for config groups, and an override of a key of the same name
            # (``strategies=[...]`` next to a user's strategies/) for a choice of that group.
            if text is None:
                raise UnknownConfig(f"{source}: not found", [])
            store.store(name=_FILE, node=OmegaConf.create(text))
            entry, search_dir = _FILE, None
        store.store(name=_PRIMARY, node={"defaults": [schema, entry, "_self_"]})
        loader = ConfigLoaderImpl(config_search_path=create_config_search_path(search_dir))
        cfg = loader.load_configuration(_PRIMARY, list(overrides), run_mode=RunMode.RUN,
                                        from_shell=False)
    except MissingConfigException as err:
        raise UnknownConfig(f"{source}: not found", list(err.options or [])) from None
    except (HydraException, OmegaConfBaseException, YAMLError) as err:
        raise _one_line(err, source, overrides_source) from None
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def parse_override(text: str, where: str):
    """``text`` (``key=value`` in Hydra's override grammar) as Hydra's parsed override; a
    grammar error is one :class:`ConfigError` line ``<where>: <reason>``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        (override,) = OverridesParser.create().parse_overrides([text])
    except HydraException as err:
        raise ConfigError(f"{where}: {' '.join(str(err).split('See https')[0].split())}"
                          ) from None
    return override
