import re
from pathlib import Path

import pytest
import yaml

from sparsegrow import SparseGrowPlugin, recipes
from sparsegrow.config.registry import plugin_class
from sparsegrow.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

# where each recipe keyword lands in the built plugin
SETTINGS = {
    "growable_energy": lambda p: p.freezing.growable_energy,
    "birth_gate": lambda p: p.growth.gate is not None,
    "free_new_units": lambda p: p.freezing.free_new_units,
    "grow_at": lambda p: p.growth.grow_at,
    "units": lambda p: p.growth.units,
    "subspace_energy": lambda p: p.freezing.subspace.energy,
    "project_every": lambda p: p.freezing.project_every,
}

# What the texts quote as measurements: decimals, and counts of four digits or more.
NUMBER = re.compile(r"\d+\.\d+|\d{1,3}(?:,\d{3})+|\d{4,}")


def _results_tables() -> dict[str, str]:
    """RESULTS.md's sections by table id ("2", "7a", "Targets"), each with its text."""
    text = (REPO / "RESULTS.md").read_text()
    parts = re.split(r"^## (?:(\d+[a-z]?)\. |(Targets)$)", text, flags=re.M)
    # re.split gives [preamble, id, "Targets", body, id, "Targets", body, ...]
    return {number or targets: body
            for number, targets, body in zip(parts[1::3], parts[2::3], parts[3::3])}


def test_results_sections_are_parsed():
    tables = _results_tables()
    assert {"Targets", "2", "3", "4", "6", "7", "7a"} <= set(tables)
    assert "| sparsegrow_progressive |" not in tables["2"]   # one section, not the whole file
    assert "permuted_mnist_10" in tables["2"] and "What growth adds" in tables["7"]


@pytest.mark.parametrize("name", recipes.names())
def test_recipe_builds_the_plugin_it_describes(name):
    recipe = recipes.get(name)
    plugin = recipes.build(name)
    assert isinstance(plugin, SparseGrowPlugin)
    default = SparseGrowPlugin()
    for keyword, value in recipe.plugin.items():
        assert SETTINGS[keyword](plugin) == value
        assert SETTINGS[keyword](default) != value, f"{keyword} is the default already"


def test_every_recipe_keyword_is_checked():
    used = {k for name in recipes.names() for k in recipes.get(name).plugin}
    assert used <= set(SETTINGS)


def test_progressive_is_growth_at_each_start_behind_the_birth_gate():
    plugin = recipes.progressive()
    assert (plugin.growth.units, plugin.growth.grow_at, plugin.growth.gate is not None) == (
        20, 0.0, True)
    assert plugin.freezing.free_new_units and plugin.freezing.growable_energy == 0.99


def test_overrides_replace_and_add_keywords_and_keep_the_rest():
    plugin = recipes.progressive(units=32, quiet_margin=0.0, freeze_ratio=0.1)
    assert plugin.growth.units == 32 and plugin.freezing.freeze_ratio == 0.1
    assert plugin.growth.gate is not None and plugin.freezing.growable_energy == 0.99
    assert recipes.build("progressive", units=32).growth.units == 32
    assert recipes.kwargs("progressive", units=32)["units"] == 32


def test_an_unknown_override_is_one_line_naming_recipe_keyword_and_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        recipes.progressive(unit=32)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("recipe 'progressive': unknown keyword 'unit' "
                              "(SparseGrowPlugin accepts: ")
    assert "units" in message and "birth_gate" in message


def test_an_unknown_recipe_lists_the_recipes():
    with pytest.raises(ConfigError, match=r"^unknown recipe 'progresive': choose one of "
                                          r"default, lwf, replay, strict, progressive$"):
        recipes.get("progresive")


def test_plugin_rejections_still_apply_to_overrides():
    with pytest.raises(ConfigError, match="free_new_units.*gating"):
        recipes.progressive(gating="mask")


def test_kwargs_is_a_fresh_copy():
    recipes.kwargs("replay")["subspace_energy"]["head"] = 0.5
    recipes.kwargs("replay")["project_every"] = 1
    assert recipes.kwargs("replay") == {"subspace_energy": {"default": 0.3, "head": 0.0},
                                        "project_every": 10}


@pytest.mark.parametrize("name", recipes.names())
def test_each_recipe_has_an_entry_function_documented_from_the_registry(name):
    entry = getattr(recipes, name)
    assert entry.__name__ == name and entry.__doc__ == recipes.get(name).doc
    assert _settings(entry()) == _settings(recipes.build(name))


def _settings(plugin) -> dict:
    return {k: get(plugin) for k, get in SETTINGS.items()}


def test_plugins_builds_the_companions_the_recipe_was_measured_with():
    from avalanche.training.plugins import LwFPlugin, ReplayPlugin

    lwf, sparsegrow = recipes.plugins("lwf", units=8)
    assert isinstance(lwf, LwFPlugin) and (lwf.lwf.alpha, lwf.lwf.temperature) == (0.5, 2.0)
    assert isinstance(sparsegrow, SparseGrowPlugin) and sparsegrow.growth.units == 8
    replay, _ = recipes.plugins("replay")
    assert isinstance(replay, ReplayPlugin) and replay.mem_size == 500
    (only,) = recipes.plugins("progressive")
    assert isinstance(only, SparseGrowPlugin)


@pytest.mark.parametrize("name", recipes.names())
def test_docstring_quotes_only_numbers_of_the_results_tables_it_names(name):
    recipe = recipes.get(name)
    tables = _results_tables()
    assert recipe.tables and set(recipe.tables) <= set(tables)
    doc = recipes.get(name).doc
    for table in recipe.tables:
        assert (f"table {table}" if table != "Targets" else "Targets") in doc
    cited = "".join(tables[t] for t in recipe.tables).replace(",", "")
    numbers = NUMBER.findall(recipe.cost + " " + recipe.evidence)
    assert numbers
    for number in numbers:
        assert re.search(rf"(?<![\d.]){re.escape(number.replace(',', ''))}(?![\d.])", cited), (
            f"{name}: {number} is in none of RESULTS.md tables {', '.join(recipe.tables)}")


def test_the_number_check_can_fail():
    cited = _results_tables()["7"]
    assert not re.search(r"(?<![\d.])85\.12(?![\d.])", cited)
    assert re.search(r"(?<![\d.])85\.11(?![\d.])", cited)


# Presets that use SparseGrowPlugin and the recipe each one spells out. Until the presets name
# their recipe themselves, this test keeps the two lists of keywords from drifting apart.
PRESET_RECIPES = {
    "sparsegrow": "default",
    "sparsegrow_lwf": "lwf",
    "sparsegrow_strict": "strict",
    "sparsegrow_progressive": "progressive",
    "replay_sparsegrow": "replay",
    "replay_sparsegrow_defaults": "default",   # the defaults next to Replay, as the README says
}


def _presets() -> dict[str, dict]:
    # the presets are moving into the package; read both places, the package's winning
    files = [*(REPO / "strategies").glob("*.yaml"),
             *(REPO / "sparsegrow" / "presets").glob("**/*.yaml")]
    return {f.stem: yaml.safe_load(f.read_text()) for f in files}


def test_every_sparsegrow_preset_spells_out_its_recipe():
    presets = {name: p for name, p in _presets().items()
               if any(plugin["name"] == "sparsegrow" for plugin in p.get("plugins") or ())}
    assert set(presets) == set(PRESET_RECIPES)
    for name, preset in presets.items():
        recipe = recipes.get(PRESET_RECIPES[name])
        sections = {plugin.pop("name"): plugin for plugin in preset["plugins"]}
        assert sections.pop("sparsegrow") == recipes.kwargs(recipe.name), name
        others = {plugin_class(n).__name__: kw for n, kw in sections.items()}
        for cls, keywords in recipe.companions.items():
            assert others.get(cls) == keywords, f"{name}: {cls}"
