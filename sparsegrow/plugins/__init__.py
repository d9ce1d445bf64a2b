"""Avalanche plugins on top of the growth engine and the protection math."""

from sparsegrow.plugins.compat import check_plugins
from sparsegrow.plugins.freezing import FreezingPlugin
from sparsegrow.plugins.gift import GIFtMetric
from sparsegrow.plugins.growth import GrowthPlugin
from sparsegrow.plugins.options import GrowthOptions, ProtectionOptions
from sparsegrow.plugins.sparsegrow import SparseGrowPlugin

__all__ = ["SparseGrowPlugin", "GrowthOptions", "ProtectionOptions", "GrowthPlugin",
           "FreezingPlugin", "GIFtMetric", "check_plugins"]
