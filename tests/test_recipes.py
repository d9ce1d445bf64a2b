import re
from pathlib import Path

import pytest
import yaml

from sparsegrow import SparseGrowPlugin, recipes
from sparsegrow.config.registry import plugin_class
from sparsegrow.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

# where each recipe keyword (an option of a group as group.option) lands in the built plugin
SETTINGS = {
    "budget": lambda p: p.growth.budget,
    "protection.growable_energy": lambda p: p.freezing.growable_energy,
    "growth.birth_gate": lambda p: p.growth.gate is not None,
    "growth.free_new_units": lambda p: p.freezing.free_new_units,
    "growth.grow_at": lambda p: p.growth.grow_at,
    "growth.units": lambda p: p.growth.units,
    "growth.lateral": lambda p: p.growth.lateral,
    "subspace_energy": lambda p: p.freezing.subspace.energy,
    "protection.project_every": lambda p: p.freezing.project_every,
}


def _flat(keywords: dict) -> dict:
    """``keywords`` with the options of the groups as ``group.option``."""
    out = {}
    for key, value in keywords.items():
        if key in ("growth", "protection") and isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


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
    for keyword, value in _flat(recipe.plugin).items():
        assert SETTINGS[keyword](plugin) == value
    # a recipe states its whole measured configuration, defaults included (so that it keeps
    # building what was measured when a default changes), and differs from the defaults
    if name != "default":
        assert _settings(plugin) != _settings(default), f"{name} builds the defaults"


def test_every_recipe_keyword_is_checked():
    used = {k for name in recipes.names() for k in _flat(recipes.get(name).plugin)}
    assert used <= set(SETTINGS)


def test_progressive_is_growth_at_each_start_behind_the_birth_gate():
    plugin = recipes.progressive()
    assert (plugin.growth.units, plugin.growth.grow_at, plugin.growth.gate is not None) == (
        20, 0.0, True)
    assert plugin.freezing.free_new_units and plugin.freezing.growable_energy == 0.99


def test_overrides_replace_and_add_keywords_and_keep_the_rest():
    plugin = recipes.progressive(growth={"units": 32, "quiet_margin": 0.0},
                                 protection={"freeze_ratio": 0.1})
    assert plugin.growth.units == 32 and plugin.freezing.freeze_ratio == 0.1
    assert plugin.growth.gate is not None and plugin.freezing.growable_energy == 0.99
    assert recipes.build("progressive", growth={"units": 32}).growth.units == 32
    # a mapping merges into the recipe's; any other value replaces it
    assert recipes.kwargs("progressive", growth={"units": 32})["growth"] == {
        "birth_gate": True, "free_new_units": True, "grow_at": 0.0, "units": 32}
    assert recipes.kwargs("progressive", growth=False)["growth"] is False
    assert recipes.kwargs("replay", subspace_energy={"head": 0.5})["subspace_energy"] == {
        "default": 0.3, "head": 0.5}
    assert recipes.kwargs("replay", subspace_energy=0.5)["subspace_energy"] == 0.5


def test_an_unknown_override_is_one_line_naming_recipe_keyword_and_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        recipes.progressive(unit=32)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("recipe 'progressive': unknown keyword 'unit' "
                              "(SparseGrowPlugin accepts: ")
    assert "growth" in message and "protection" in message


def test_an_unknown_option_of_a_group_is_one_line_naming_group_option_and_the_valid_ones():
    with pytest.raises(ConfigError, match=r"^growth: unknown option 'unit' \(accepted: grow_at, "
                                          r"units, .*, batches\)$"):
        recipes.progressive(growth={"unit": 32})


def test_an_unknown_recipe_lists_the_recipes():
    with pytest.raises(ConfigError, match=r"^unknown recipe 'progresive': choose one of "
                                          r"default, late, lwf, replay, replay_progressive, "
                                          r"strict, blocks, progressive$"):
        recipes.get("progresive")


def test_plugin_rejections_still_apply_to_overrides():
    with pytest.raises(ConfigError, match="free_new_units.*gating"):
        recipes.progressive(protection={"gating": "mask"})


def test_kwargs_is_a_fresh_copy():
    recipes.kwargs("replay")["subspace_energy"]["head"] = 0.5
    recipes.kwargs("replay")["protection"]["project_every"] = 1
    kwargs = recipes.kwargs("replay")
    assert kwargs["subspace_energy"] == {"default": 0.3, "head": 0.0}
    assert kwargs["protection"] == {"growable_energy": None, "project_every": 10}


@pytest.mark.parametrize("name", recipes.names())
def test_each_recipe_has_an_entry_function_documented_from_the_registry(name):
    entry = getattr(recipes, name)
    assert entry.__name__ == name and entry.__doc__ == recipes.get(name).doc
    assert _settings(entry()) == _settings(recipes.build(name))


def _settings(plugin) -> dict:
    return {k: get(plugin) for k, get in SETTINGS.items()}


def test_plugins_builds_the_companions_the_recipe_was_measured_with():
    from avalanche.training.plugins import LwFPlugin, ReplayPlugin

    lwf, sparsegrow = recipes.plugins("lwf", growth={"units": 8})
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


def _presets() -> dict[str, dict]:
    return {f.stem: yaml.safe_load(f.read_text())
            for f in (REPO / "sparsegrow" / "presets").glob("*.yaml")}


def test_every_sparsegrow_preset_names_its_recipe_and_repeats_none_of_its_keywords():
    presets = {name: p for name, p in _presets().items()
               if any(plugin["name"] == "sparsegrow" for plugin in p.get("plugins") or ())}
    assert {"sparsegrow", "sparsegrow_progressive", "replay_sparsegrow"} <= set(presets)
    for name, preset in presets.items():
        sections = {plugin.pop("name"): plugin for plugin in preset["plugins"]}
        section = sections.pop("sparsegrow")
        assert "recipe" in section, f"{name} names no recipe"
        recipe = recipes.get(section.pop("recipe"))
        repeated = set(_flat(section)) & set(_flat(recipe.plugin))
        assert not repeated, f"{name} repeats {repeated} of recipe {recipe.name}"
        others = {plugin_class(n).__name__: kw for n, kw in sections.items()}
        for cls, keywords in recipe.companions.items():
            assert others.get(cls) == keywords, f"{name}: {cls}"


def test_a_preset_naming_a_recipe_builds_the_recipes_plugin(tmp_path):
    from sparsegrow.config.loading import load_preset
    from sparsegrow.runner.build import build_plugins

    (tmp_path / "strategies").mkdir()
    file = tmp_path / "strategies" / "mine.yaml"
    file.write_text("base: naive\nplugins:\n  - {name: sparsegrow, recipe: progressive,\n"
                    "     growth: {units: 32}}\n")
    (plugin,) = build_plugins(load_preset(file), file)
    assert plugin.growth.units == 32 and plugin.growth.gate is not None   # merged
    file.write_text("base: naive\nplugins:\n  - {name: replay, recipe: progressive}\n")
    with pytest.raises(ConfigError, match=r"plugins\[0\]\.recipe: only the sparsegrow plugin "
                                          r"has recipes, not 'replay'$"):
        load_preset(file)
    file.write_text("base: naive\nplugins:\n  - {name: sparsegrow, recipe: progresive}\n")
    with pytest.raises(ConfigError, match=r"plugins\[0\]\.recipe: unknown recipe 'progresive'"):
        load_preset(file)
