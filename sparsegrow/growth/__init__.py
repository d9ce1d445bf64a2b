"""The growth engine: function-preserving layer surgery on any PyTorch model (no Avalanche).

Start with :class:`Grower`; the modules below it are usable on their own.
"""

from sparsegrow.errors import GrowthError
from sparsegrow.growth.cross_covariance import Spectrum, cross_covariances, spectra
from sparsegrow.growth.deepen import add_branch, insert_layer
from sparsegrow.growth.engine import Grower, count_parameters
from sparsegrow.growth.graph import ExpandablePair, GraphReport, analyse
from sparsegrow.growth.initializers import INITIALIZERS, growth_size, initialize
from sparsegrow.growth.silence import later_units_silenced
from sparsegrow.growth.optimizer_state import (add_parameters, held_parameters,
                                               replace_parameters)
from sparsegrow.growth.surgery import pad_to, widen
from sparsegrow.growth.tracked import TrackedTensors

__all__ = [
    "GrowthError", "Grower", "count_parameters", "analyse", "GraphReport", "ExpandablePair",
    "widen", "pad_to", "initialize", "growth_size", "INITIALIZERS", "Spectrum",
    "cross_covariances", "spectra", "insert_layer", "add_branch", "replace_parameters",
    "add_parameters", "held_parameters", "TrackedTensors", "later_units_silenced",
]
