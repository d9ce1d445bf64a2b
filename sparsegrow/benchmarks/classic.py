"""Avalanche's own classic generators (SplitCIFAR100, SplitTinyImageNet, CORe50, ...) by name,
so users keep the benchmarks they already run: ``name: classic:SplitCIFAR100`` in YAML, the
generator's usual arguments next to it."""

from __future__ import annotations

import difflib
import inspect
import re

from sparsegrow.errors import ConfigError, DatasetNotFoundError

# What a generator raises when its data is missing and cannot be downloaded: urllib's URLError
# and other OSErrors (no internet, missing file), or torchvision's RuntimeErrors
# "Dataset not found or corrupted..." / "Error downloading ...". Any other RuntimeError is a bug
# and keeps its traceback.
_DATA_MESSAGE = re.compile(r"not found|download|corrupt", re.IGNORECASE)


def classic_generators() -> dict:
    import avalanche.benchmarks.classic as classic

    return {name: obj for name, obj in vars(classic).items()
            if inspect.isfunction(obj) and name[:1].isupper()}


def classic(name: str, **kwargs):
    """Call ``avalanche.benchmarks.classic.<name>(**kwargs)``.

    :param name: the generator's name, e.g. ``"SplitCIFAR100"``.
    :param kwargs: its arguments (``dataset_root``, ``n_experiences``, ...).
    """
    generators = classic_generators()
    if name not in generators:
        close = difflib.get_close_matches(name, generators, n=3)
        hint = (f"did you mean {', '.join(close)}?" if close
                else f"known: {', '.join(sorted(generators))}")
        raise ConfigError(f"unknown Avalanche classic benchmark '{name}'; {hint}")
    generator = generators[name]
    try:
        inspect.signature(generator).bind(**kwargs)
    except TypeError as err:  # a keyword this generator does not take, or a missing one
        raise ConfigError(f"classic:{name}: {err}") from None
    try:
        bench = generator(**kwargs)
    except (OSError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and not _DATA_MESSAGE.search(str(err)):
            raise
        raise DatasetNotFoundError(
            f"classic:{name} could not load its data ({type(err).__name__}: {err}). Put the "
            "files under its dataset_root (Avalanche's default is ~/.avalanche/data) or run it "
            "once on a machine with internet") from err
    sample = bench.train_stream[0].dataset[0][0]
    bench.input_shape = tuple(sample.shape)
    if not hasattr(bench, "n_classes"):
        bench.n_classes = len({int(c) for exp in bench.train_stream
                               for c in exp.classes_in_this_experience})
    return bench
