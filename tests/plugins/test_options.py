"""SparseGrowPlugin's option groups: mappings as in YAML, one-line errors, warnings for options
that the rest of the configuration ignores, and the automatic defaults."""

import warnings
from dataclasses import fields

import pytest

from sparsegrow.errors import ConfigError
from sparsegrow.plugins import FreezingPlugin, GrowthPlugin, SparseGrowPlugin
from sparsegrow.plugins.options import GrowthOptions, IgnoredOptionWarning, ProtectionOptions


def _quiet(**kwargs) -> SparseGrowPlugin:
    """The plugin, failing on any warning of an ignored option."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredOptionWarning)
        return SparseGrowPlugin(**kwargs)


def test_a_mapping_an_instance_and_the_flat_building_blocks_agree():
    from_dict = _quiet(growth={"units": 12, "free_new_units": True, "grow_at": 0.5},
                       protection={"growable_energy": 0.95})
    from_options = _quiet(growth=GrowthOptions(units=12, free_new_units=True, grow_at=0.5),
                          protection=ProtectionOptions(growable_energy=0.95))
    assert from_dict.options == from_options.options
    growth = from_dict.options["growth"]
    assert (growth.isolate, growth.init_density, growth.grow_at) == (False, 1.0, 0.5)
    part = from_dict.freezing
    assert (part.free_new_units, part.isolate_growth, part.growable_energy) == (True, False, 0.95)
    assert (from_dict.growth.units, from_dict.growth.init_density) == (12, 1.0)


def test_the_building_blocks_take_the_option_names():
    # one meaning per keyword name: every option is a keyword of the plugin that applies it
    growth = {f.name for f in fields(GrowthOptions)}
    protection = {f.name for f in fields(ProtectionOptions)}
    assert growth - {"free_new_units", "isolate", "quiet_margin"} <= set(
        GrowthPlugin.__init__.__kwdefaults__)
    assert protection | {"subspace_energy", "free_new_units", "isolate", "quiet_margin"} == set(
        FreezingPlugin.__init__.__kwdefaults__)
    # and the same defaults where they mean the same thing (the automatic growable energy
    # follows the growth, which only SparseGrowPlugin knows: alone, the part protects every
    # layer alike)
    for name in protection - {"growable_energy"}:
        assert FreezingPlugin.__init__.__kwdefaults__[name] == getattr(ProtectionOptions, name)
    assert FreezingPlugin.__init__.__kwdefaults__["growable_energy"] is None
    assert SparseGrowPlugin(growth=False).freezing.growable_energy is None
    assert SparseGrowPlugin().freezing.growable_energy == 0.99


def test_automatic_defaults_follow_gating_init_and_free_new_units():
    def resolved(**kwargs):
        return _quiet(**kwargs).options["growth"]

    default = resolved()
    assert (default.free_new_units, default.grow_at, default.init_density, default.isolate) \
        == (True, 0.0, 1.0, False)
    late = resolved(growth={"free_new_units": False})
    assert (late.grow_at, late.init_density, late.isolate) == (0.75, 0.5, True)
    isolated = resolved(growth={"isolate": True})
    assert (isolated.free_new_units, isolated.grow_at) == (False, 0.75)
    masks = resolved(protection={"gating": "mask"})
    assert (masks.free_new_units, masks.grow_at, masks.init_density, masks.isolate) \
        == (False, 0.0, 1.0, True)
    assert not resolved(growth={"init": "net2wider", "units": 4},
                        protection={"gating": "mask"}).isolate
    assert not resolved(growth={"free_new_units": True}).isolate
    given = resolved(growth={"grow_at": 0.5, "init_density": 0.25, "isolate": False},
                     protection={"gating": "mask"})
    assert (given.grow_at, given.init_density, given.isolate) == (0.5, 0.25, False)


@pytest.mark.parametrize("kwargs, message", [
    ({"growth": {"unit": 3}}, "growth: unknown option 'unit' (accepted: grow_at, units, "),
    ({"protection": {"gatting": "mask"}},
     "protection: unknown option 'gatting' (accepted: gating, importance, "),
    ({"growth": 3}, "growth must be true, false, a GrowthOptions or a mapping of its options, "
                    "got 3"),
    ({"protection": None}, "protection must be true, false, a ProtectionOptions or a mapping"),
    ({"growth": False, "protection": False},
     "SparseGrowPlugin with growth: false and protection: false does nothing"),
    ({"growth": {"init": "net2wider", "units": 4}},
     "growth.init net2wider copies existing units, which cannot be orthogonal to earlier "
     "inputs: use protection.gating 'mask' with it, not 'subspace'"),
    ({"growth": {"init": "net2wider", "units": 4, "isolate": True},
      "protection": {"gating": "mask"}},
     "growth.init net2wider copies existing units, which cannot be kept orthogonal to earlier "
     "inputs: set growth.isolate: false with it"),
    ({"growth": {"free_new_units": True}, "protection": {"gating": "mask"}},
     "free_new_units exempts new units from subspace protection: it needs gating 'subspace' "
     "or 'both', not 'mask'"),
    ({"growth": {"free_new_units": True, "isolate": True}},
     "free_new_units leaves new units free in every input direction, isolate keeps them "),
    ({"growth": {"quiet_margin": 1.0, "isolate": False}},
     "quiet_margin lowers the thresholds of isolated new units: it needs isolate: true"),
])
def test_bad_options_and_combinations_are_one_line(kwargs, message):
    with pytest.raises(ConfigError) as info:
        SparseGrowPlugin(**kwargs)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("kwargs, ignored", [
    ({"growth": {"units": 8, "energy": 0.97, "max_ratio": 0.5}},
     "energy, max_ratio ignored: units fixes the number of new units"),
    ({"growth": {"units": 8, "min_units": 2}}, "min_units ignored: units fixes"),
    ({"growth": False, "budget": 2.0}, "budget ignored with growth: false"),
    ({"growth": False, "layers": ["fc1"]}, "layers ignored with growth: false"),
    ({"protection": False, "growth": {"quiet_margin": 1.0}},
     "growth options quiet_margin ignored with protection: false"),
    ({"protection": False, "subspace_energy": 0.5},
     "subspace_energy ignored with protection: false"),
    # masks keep bases only to isolate new units (on by default): the head policy never applies
    ({"protection": {"gating": "mask", "project_every": 5, "head": "all"}},
     "head ignored under gating 'mask'$"),
    ({"growth": {"isolate": False}, "subspace_energy": 0.5,
      "protection": {"gating": "mask", "project_every": 5, "growable_energy": 0.99}},
     "subspace_energy, project_every, growable_energy ignored under gating 'mask' without "
     "isolated new units \\(growth.isolate\\)"),
    ({"growth": False, "protection": {"gating": "mask", "head": "none"}},
     "head ignored under gating 'mask' without isolated new units"),
])
def test_an_ignored_option_is_a_warning_naming_it(kwargs, ignored):
    with pytest.warns(IgnoredOptionWarning, match=f"^{ignored}"):
        SparseGrowPlugin(**kwargs)


def test_the_defaults_and_a_used_option_warn_of_nothing():
    _quiet()
    _quiet(growth={"units": 8}, protection={"gating": "both", "project_every": 5})
    _quiet(growth={"units": None, "energy": 0.97, "max_ratio": 0.5})
    _quiet(growth=False, protection={"growable_energy": 0.99})
    # under masks the subspace settings still set the isolation of new units
    _quiet(subspace_energy=0.95, protection={"gating": "mask", "project_every": 5,
                                             "growable_energy": 0.99})


def test_recipe_classmethod_builds_the_recipe_with_overrides():
    plugin = SparseGrowPlugin.recipe("progressive", growth={"units": 32})
    assert plugin.growth.units == 32 and plugin.growth.gate is not None
    assert plugin.freezing.growable_energy == 0.99
    with pytest.raises(ConfigError, match="^unknown recipe 'progresive'"):
        SparseGrowPlugin.recipe("progresive")


def test_the_literal_choices_are_those_the_plugins_check():
    from typing import get_args

    from sparsegrow.growth import INITIALIZERS
    from sparsegrow.plugins.options import BatchNorm, Importance, Init
    from sparsegrow.protection.batchnorm import BATCHNORM
    from sparsegrow.protection.importance import SCORES

    assert set(get_args(Init)) == set(INITIALIZERS)
    assert set(get_args(Importance)) == set(SCORES)
    assert set(get_args(BatchNorm)) == set(BATCHNORM)
