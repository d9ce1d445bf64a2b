"""User-facing errors.

Every error caused by the user's input (a config key, a value, a model the engine cannot grow, a
missing dataset, plugins that cannot be combined) is a :class:`SparseGrowError`. The command line
prints its message as one line and exits with status 2, without a traceback; anything else is a
bug and keeps its traceback.
"""


class SparseGrowError(Exception):
    """Base class of every error whose message is meant for the user."""


class GrowthError(SparseGrowError):
    """The growth engine cannot analyse or grow a layer; the message names the layer and why."""


class ConfigError(SparseGrowError):
    """A config file has an unknown key or a bad value; the message names the key and the file."""


class DatasetNotFoundError(SparseGrowError):
    """A dataset's files are missing; the message says where it looked and how to get them."""


class IncompatiblePluginError(SparseGrowError):
    """Plugins were combined in a way that cannot work (e.g. SI with widening)."""


class DivergenceError(SparseGrowError):
    """Training diverged (a non-finite loss or parameter); the message names the strategy, seed,
    experience and iteration and the likely cause."""
