"""Recipes: the recommended SparseGrow configurations, by name, in one call.

Each recipe is one :class:`Recipe` of the registry below: the :class:`SparseGrowPlugin`
keywords, the Avalanche plugins it was measured with (LwF, Replay), when to use it, what it
costs and the measured number that justifies it, with the RESULTS.md table it comes from.
This registry is the single definition: the entry functions (:func:`progressive`, ...), their
docstrings, :func:`build`, :func:`kwargs` for the runner's presets and the documentation's
recipes page are all generated from it.

    from sparsegrow import recipes

    plugin = recipes.progressive(growth={"units": 32})   # a SparseGrowPlugin, overrides checked
    plugins = recipes.plugins("lwf")                     # [LwFPlugin(...), SparseGrowPlugin(...)]
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from sparsegrow.errors import ConfigError

if TYPE_CHECKING:
    from sparsegrow.plugins import SparseGrowPlugin


@dataclass(frozen=True)
class Headline:
    """The measured comparison a recipe is recommended on: two strategies of one experiment,
    whose numbers ``sparsegrow report`` reads from ``results/<experiment>/summary.json`` for
    the README's recipe table (so that no number of that table is typed by hand).

    :param stream: the stream and model, as a reader names them.
    :param experiment: the experiment (``experiments/<experiment>.yaml``, test split).
    :param strategy: the recipe's run in that experiment.
    :param baseline: the run it is compared with, in the same experiment.
    :param versus: what the baseline is (e.g. ``"the same plugin without growth"``).
    """

    stream: str
    experiment: str
    strategy: str
    baseline: str
    versus: str


@dataclass(frozen=True)
class Recipe:
    """A recommended configuration of :class:`SparseGrowPlugin`.

    :param name: the recipe's name (also the name of its entry function in this module).
    :param summary: one line: what the configuration is.
    :param plugin: the :class:`SparseGrowPlugin` keywords (``growth`` and ``protection`` as
        mappings of their options); the others keep their defaults.
    :param when: when to use it (the kind of stream, what may be stored, what may grow).
    :param cost: what it costs: parameters over the stream, training time.
    :param evidence: the measured numbers that justify it, copied from RESULTS.md.
    :param tables: the RESULTS.md tables that ``cost`` and ``evidence`` quote (``"7"``,
        ``"7a"``, ``"Targets"``): every number of those texts appears in one of them.
    :param companions: Avalanche plugins it was measured with, as
        ``{class name in avalanche.training.plugins: keywords}``; :func:`plugins` builds them.
    :param use_for: a few words on the stream it is for (the README's recipe table).
    :param headline: the comparison the README's recipe table shows for it.
    """

    name: str
    summary: str
    plugin: dict[str, Any]
    when: str
    cost: str
    evidence: str
    tables: tuple[str, ...]
    companions: dict[str, dict[str, Any]] = field(default_factory=dict)
    use_for: str = ""
    headline: Headline | None = None

    @property
    def call(self) -> str:
        """The :class:`SparseGrowPlugin` call the recipe stands for."""
        return f"SparseGrowPlugin({_keywords(self.plugin)})"

    @property
    def usage(self) -> str:
        """One sentence: what the entry function and :func:`plugins` build."""
        alone = f"`recipes.{self.name}(**overrides)` builds `{self.call}`"
        if not self.companions:
            return alone + "."
        others = " and ".join(f"`{cls}({_keywords(kw)})`" for cls, kw in self.companions.items())
        return (f"Measured together with Avalanche's {others}: "
                f"`recipes.plugins({self.name!r}, **overrides)` builds them all; {alone} alone.")

    @property
    def tables_text(self) -> str:
        """The RESULTS.md tables it quotes, as a reader names them ("table 7, Targets")."""
        return ", ".join(t if t == "Targets" else f"table {t}" for t in self.tables)

    @property
    def doc(self) -> str:
        """The entry function's docstring."""
        return (f"{self.summary}\n\n{self.usage}\n\n"
                f"**When to use it.** {self.when}\n\n"
                f"**Cost.** {self.cost}\n\n"
                f"**Evidence** (RESULTS.md, {self.tables_text}). {self.evidence}\n\n"
                f":param overrides: :class:`SparseGrowPlugin` keywords that replace or add to "
                f"the recipe's; a mapping merges into the recipe's mapping of the same keyword "
                f"(``growth={{'units': 32}}`` keeps its other growth options).\n"
                f":return: a new :class:`SparseGrowPlugin`.\n"
                f":raises ConfigError: a keyword that :class:`SparseGrowPlugin` does not have.")


def _keywords(keywords: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in keywords.items())


def _merged(keywords: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A fresh copy of ``keywords`` with ``overrides``: a mapping merges into the mapping of the
    same keyword, any other value replaces it (deep enough: values are numbers, strings, bools
    or flat mappings, such as the options or the layer energies)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in keywords.items()}
    for key, value in overrides.items():
        mapped = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = {**out[key], **value} if mapped else value
    return out


# The paper's late growth, the plugin's defaults of 0.1: a data-driven number of units late
# in each experience, isolated from old inputs from birth, the growable layers protected like
# the others, no budget. The recipes measured with it state it whole, so that they keep
# building what was measured.
_LATE = {"budget": None, "growth": {"units": None, "free_new_units": False, "birth_gate": False},
         "protection": {"growable_energy": None}}

# Progressive growth as measured in table 7 (no budget): the defaults' block of free units,
# stated whole; the two progressive recipes differ only in the birth gate.
_PROGRESSIVE = {"budget": None, "protection": {"growable_energy": 0.99},
                "growth": {"free_new_units": True, "grow_at": 0.0, "units": 20}}


def _late(**extra) -> dict[str, Any]:
    """:data:`_LATE` with ``extra`` keywords (a mapping merges into the group's)."""
    return _merged(_LATE, extra)


_RECIPES = (
    Recipe(
        name="default",
        summary="The plugin's defaults: a block of 20 units per layer at each experience's "
                "start, free while it lasts, then protected; the birth gate unless the stream is "
                "class-incremental; a budget of 10× the initial model.",
        plugin={},
        when="Any stream, when no other recipe is known to fit it: the settings follow its "
             "kind. The birth gate arms on permuted and rotated streams and stays off on "
             "class-incremental ones, where its judge confuses the classes; on a "
             "class-incremental stream, put a replay buffer next to it. Where the model must "
             "stay smaller, lower the budget (``budget=2.0``) or use ``strict``; where it may "
             "grow without bound, ``progressive``.",
        cost="Parameters grow by a block per experience until the budget, 10× the initial "
             "model (table 7c): MLP 2×50, 42,310 at the start, ends at 422,250 on Permuted "
             "MNIST 20 (228,864 averaged over the stream) and at 235,990 on Rotated MNIST "
             "(10 experiences); the narrow small CNN grows from 6,818 to 67,630 on Split "
             "MNIST 5.",
        evidence="Test split, 3 seeds, against the same plugin without growth (table 7c): "
                 "Permuted MNIST 20, MLP 2×50: 88.97 ± 0.31 against 75.25 ± 0.75; Rotated "
                 "MNIST in 10° steps: 85.04 ± 1.11 against 69.59 ± 1.41; Split MNIST 5 with "
                 "Replay 500: MLP 2×50 83.97 ± 2.11 against 80.36 ± 2.26 (Replay alone 76.01 "
                 "± 5.49), narrow small CNN 94.87 ± 0.08 against 89.91 ± 2.07 (Replay alone "
                 "81.51 ± 7.58). Fixed models trained with the same protection, in the same order: "
                 "of its final width 85.81 ± 0.17, 75.48 ± 0.23, 82.16 ± 1.10 and 94.12 ± "
                 "0.55; of its mean parameter count 84.61 ± 0.49, 74.11 ± 2.20, 80.11 ± 3.46 "
                 "and 93.68 ± 0.83. Growth beats both on every stream, on the CNN by less "
                 "than a point.",
        tables=("7c",),
        use_for="any stream: the settings follow its kind",
        headline=Headline("Permuted MNIST 20, MLP 2×50", "default_growth_permuted_mnist_20",
                          "sparsegrow", "sparsegrow_no_growth",
                          "the same plugin without growth"),
    ),
    Recipe(
        name="late",
        summary="The paper's late growth (the defaults of 0.1): a data-driven number of "
                "sparse units late in each experience, isolated from old inputs from birth; "
                "no budget.",
        plugin=_late(),
        when="The method as the paper specifies it (METHOD.md), for comparison with it and "
             "to rerun the tables measured with it; on a wide network and a domain-incremental "
             "stream of about ten experiences with no data stored it did well. On a narrow "
             "network it grows with little effect: the defaults grow usefully there (table "
             "7c).",
        cost="Permuted MNIST 10, MLP 2×400: 13.31 ± 1.31% more parameters at the end "
             "(table 2); training time 1.04× Naive's (table 6).",
        evidence="Permuted MNIST 10, 3 seeds: ACC 90.54 ± 0.28 (BWT -2.49 ± 0.23) against "
                 "79.25 ± 1.74 for the best no-replay baseline (SI) and 68.12 ± 2.24 for Naive "
                 "(table 2). On Permuted MNIST 50 it ends at 67.00 ± 0.37 (table 4).",
        tables=("2", "4", "6"),
        use_for="the paper's method; a wide net, ~10 domain-incremental experiences",
        headline=Headline("Permuted MNIST 10, MLP 2×400", "permuted_mnist_10", "sparsegrow", "si",
                          "the best no-replay baseline (SI)"),
    ),
    Recipe(
        name="lwf",
        summary="Late growth (recipe ``late``) composed with Avalanche's Learning without "
                "Forgetting.",
        plugin=_late(),
        companions={"LwFPlugin": {"alpha": 0.5, "temperature": 2.0}},
        when="A domain-incremental stream with no data stored, where training may take "
             "longer: distillation on the new data holds back the drift that the subspace "
             "protection leaves.",
        cost="Permuted MNIST 10, MLP 2×400: 14.54 ± 1.07% more parameters at the end "
             "(table 2); training time 1.25× Naive's against 1.04× without LwF (table 6).",
        evidence="Permuted MNIST 10, 3 seeds: ACC 92.02 ± 0.17 (BWT -1.32 ± 0.18) against "
                 "90.54 ± 0.28 (BWT -2.49 ± 0.23) without LwF (table 2); Permuted MNIST 50: "
                 "70.15 ± 0.24 against 67.00 ± 0.37 (table 4).",
        tables=("2", "4", "6"),
        use_for="domain-incremental, no data stored, training may take longer",
        headline=Headline("Permuted MNIST 10, MLP 2×400", "permuted_mnist_10", "sparsegrow_lwf",
                          "sparsegrow", "late growth without LwF"),
    ),
    Recipe(
        name="replay",
        summary="Late growth (recipe ``late``) with the class-incremental protection stated, "
                "next to a replay buffer: the output layer left free, hidden layers at 30% of "
                "their old inputs' energy, restores every 10 steps.",
        plugin=_late(subspace_energy={"default": 0.3, "head": 0.0},
                     protection={"project_every": 10}),
        companions={"ReplayPlugin": {"mem_size": 500}},
        when="A class-incremental stream (new classes arrive) where a replay buffer may be "
             "stored, on a wide network. The defaults choose the same protection when they "
             "detect a class-incremental stream, and grow progressively (table 7c, on narrow "
             "networks); this recipe states the protection, so it holds whatever the "
             "detection says, and grows late.",
        cost="Split MNIST 5, MLP: 4.97 ± 0.28% more parameters at the end (table 3).",
        evidence="Split MNIST 5 with 500 stored samples, 3 seeds: ACC 84.12 ± 0.88 against "
                 "80.89 ± 3.00 for Replay alone and 81.48 ± 2.49 for Replay + EWC (table 3).",
        tables=("3",),
        use_for="class-incremental, a replay buffer allowed",
        headline=Headline("Split MNIST 5, MLP 2×400, 500 samples", "split_mnist_5_replay",
                          "replay_sparsegrow", "replay", "Replay alone"),
    ),
    Recipe(
        name="replay_progressive",
        summary="The defaults without a budget and without the birth gate, next to a replay "
                "buffer: 20 new units per layer at each experience's start, free while it "
                "lasts, then protected; growable layers at 99% of their old inputs' energy.",
        plugin=_merged(_PROGRESSIVE, {"growth": {"birth_gate": False}}),
        companions={"ReplayPlugin": {"mem_size": 500}},
        when="A class-incremental stream with a replay buffer, on a network too narrow for "
             "the stream, where the parameter count may grow with it. The best growth of the "
             "validation search on Split MNIST 5 with replay (table 7b); the birth gate is "
             "left out, because on class-incremental streams it sends inputs to the wrong "
             "experience (table 7).",
        cost="Parameters grow linearly with the stream. Split MNIST 5: MLP 2×50 from 42310 to "
             "120390 (80550 averaged over the stream); narrow small CNN from 6818 to 482818 "
             "(198418 averaged): 20 channels per convolution and event is a large block for a "
             "4-channel network (table 7).",
        evidence="Split MNIST 5 with 500 stored samples, 3 seeds (table 7): MLP 2×50 83.97 ± "
                 "2.11 against 80.36 ± 2.26 for the same plugin without growth, 76.01 ± 5.49 "
                 "for Replay alone and 82.16 ± 1.10 for a fixed model of its final width; "
                 "narrow small CNN 95.23 ± 0.06 against 89.91 ± 2.07 without growth and "
                 "81.51 ± 7.58 for Replay alone.",
        tables=("7", "7b"),
        use_for="class-incremental with replay, a narrow network; parameters may grow",
        headline=Headline("Split MNIST 5, narrow small CNN, 500 samples",
                          "growth_split_mnist_5_replay_progressive_cnn",
                          "replay_sparsegrow_progressive_no_gate", "replay_sparsegrow_no_growth",
                          "the same plugin without growth"),
    ),
    Recipe(
        name="strict",
        summary="Strict protection (99% of the old inputs' energy) of the layers growth can "
                "give input room back to; the first layer at the default 90%.",
        plugin=_late(protection={"growable_energy": 0.99}),
        when="A narrow network on a long domain-incremental stream whose parameter count must "
             "stay small: growth adds input room where strict protection used it up. A fixed "
             "model of the grown model's final width, if you know it in advance, did better; "
             "where the parameter count may grow with the stream, ``progressive`` did far "
             "better.",
        cost="Permuted MNIST 20, MLP 2×50 (42310 parameters at the start): 98376 ± 5844 at "
             "the end, 72484 ± 2632 averaged over the stream (table 7).",
        evidence="Permuted MNIST 20, MLP 2×50, 3 seeds: ACC 78.54 ± 0.69 against 75.91 ± 0.34 "
                 "for the same plugin without growth, and 80.65 ± 0.14 for a fixed model of "
                 "its final width with 105819 parameters throughout (table 7).",
        tables=("7",),
        use_for="a narrow net on a long domain-incremental stream, size must stay small",
        headline=Headline("Permuted MNIST 20, MLP 2×50", "growth_permuted_mnist_20",
                          "sparsegrow_strict", "sparsegrow_strict_no_growth",
                          "the same plugin without growth"),
    ),
    Recipe(
        name="blocks",
        summary="The defaults growing in blocks: each experience's block of 20 units per layer "
                "is a column of its own that only the output layer reads, the birth gate sends "
                "each input to one block, and a block is locked once its experience ends; "
                "the budget counts parameters without the blocks' structural zeros.",
        plugin={"growth": {"lateral": False}},
        when="A long domain-incremental stream whose experiences differ in their mean input "
             "(the birth gate must route each input to its own experience: table 7d), on a "
             "network too narrow for it, within a parameter budget that binds: dense growth's "
             "blocks then shrink as the model widens, while every block here costs the same. "
             "Set the budget for your model (it was measured with budget=800000 on a 2×50 "
             "MLP). Each experience learns with its block alone, and nothing but the "
             "output layer is shared. Measured on Permuted MNIST only; on a "
             "class-incremental stream the gate is off and the blocks are summed (unmeasured).",
        cost="Parameters in use grow by a block per experience until the budget (18 or 19 "
             "units per layer on Permuted MNIST 50): MLP 2×50, 42310 at the start, ends at "
             "799409 in use and averages 420076 over the stream; the weight tensors, stored "
             "with the blocks' structural zeros, end at 1737735 (table 7c).",
        evidence="Permuted MNIST 50, MLP 2×50, within 800000 parameters, 3 seeds: ACC 85.89 "
                 "± 0.08 (BWT -0.18 ± 0.01) against 82.75 ± 0.74 (BWT -3.76 ± 0.33) for "
                 "dense growth within the same budget, 85.11 ± 0.62 for dense growth "
                 "without a budget, and 69.58 ± 0.69 for a fixed 2×580 MLP of the budget's "
                 "size, 65.85 ± 0.45 for a fixed 2×363 of the blocks' mean count in use and "
                 "72.05 ± 0.61 for a fixed 2×979 of their final width, each trained with the "
                 "same protection (table 7c).",
        tables=("7c",),
        use_for="a long domain-incremental stream under a tight parameter budget",
        headline=Headline("Permuted MNIST 50, MLP 2×50, 800,000 parameters",
                          "growth_permuted_mnist_50_budget", "sparsegrow_budget_800k_blocks",
                          "sparsegrow_budget_800k", "dense growth within the same budget"),
    ),
    Recipe(
        name="progressive",
        summary="The defaults without a budget and with the birth gate always armed: 20 new "
                "units per layer at each experience's start, free while it lasts, then "
                "protected; the gate keeps old inputs away from units grown after their "
                "experience.",
        plugin=_merged(_PROGRESSIVE, {"growth": {"birth_gate": True}}),
        when="A long domain-incremental stream with no data stored, where the parameter count "
             "may grow linearly with the stream and experiences differ in their mean input "
             "(the birth gate routes each input by its nearest per-experience mean: every "
             "input to its own experience on permuted streams). Not for class-incremental "
             "streams: on Split MNIST 5 with replay the gate sent about a third of the inputs "
             "to the wrong experience and cost the units that learned them (table 7).",
        cost="Parameters grow linearly with the stream. MLP 2×50 (42310 parameters at the "
             "start): on Permuted MNIST 50, 1880790 at the end and 804750 averaged over the "
             "stream; on Permuted MNIST 20, 527190 and 261950 (table 7).",
        evidence="Permuted MNIST 50, MLP 2×50, 3 seeds: ACC 85.11 ± 0.62 (BWT -3.02 ± 0.22) "
                 "against 48.52 ± 0.63 for the same protection without growth and "
                 "63.85 ± 0.47 for a fixed model of its final width trained with the same "
                 "protection (table 7). Permuted MNIST 20: 89.05 ± 0.31 against 83.70 ± 0.33 "
                 "for the fixed model of its final width (table 7).",
        tables=("7",),
        use_for="long domain-incremental streams whose experiences differ in mean input; "
                "parameters may grow",
        headline=Headline("Permuted MNIST 50, MLP 2×50", "growth_permuted_mnist_50",
                          "sparsegrow_progressive", "sparsegrow_strict_no_growth",
                          "the same protection without growth"),
    ),
)

RECIPES: dict[str, Recipe] = {r.name: r for r in _RECIPES}


def names() -> list[str]:
    """The recipes' names, in the order of the registry."""
    return list(RECIPES)


def get(name: str) -> Recipe:
    """The :class:`Recipe` called ``name``.

    :raises ConfigError: no recipe has that name (the message lists them).
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}: choose one of "
                          f"{', '.join(RECIPES)}") from None


def kwargs(name: str, **overrides) -> dict[str, Any]:
    """The :class:`SparseGrowPlugin` keywords of recipe ``name`` with ``overrides`` applied
    (a fresh dict each call; the runner's presets are built from it). An override that is a
    mapping merges into the recipe's mapping of the same keyword, so that
    ``growth={"units": 32}`` changes one growth option and keeps the recipe's others; any other
    value replaces the recipe's.

    :raises ConfigError: an unknown recipe, or an override that is not a keyword of
        :class:`SparseGrowPlugin`.
    """
    recipe = get(name)
    accepted = _plugin_keywords()
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise ConfigError(f"recipe {name!r}: unknown keyword {', '.join(map(repr, unknown))} "
                          f"(SparseGrowPlugin accepts: {', '.join(sorted(accepted))})")
    return _merged(recipe.plugin, overrides)


def build(name: str, **overrides) -> SparseGrowPlugin:
    """A new :class:`SparseGrowPlugin` configured as recipe ``name``, with ``overrides``.

    :raises ConfigError: an unknown recipe or keyword, or a combination the plugin rejects.
    """
    # imported here: the registry, names() and kwargs() serve the config loader and the docs
    # build, which should not pay for importing Avalanche
    from sparsegrow.plugins import SparseGrowPlugin

    return SparseGrowPlugin(**kwargs(name, **overrides))


def plugins(name: str, **overrides) -> list:
    """Every plugin recipe ``name`` was measured with: its companions (Avalanche's
    ``LwFPlugin``, ``ReplayPlugin``) with the recipe's keywords, then :func:`build`'s
    :class:`SparseGrowPlugin` with ``overrides``. Pass the list as a strategy's ``plugins``.
    """
    from avalanche.training import plugins as avalanche_plugins

    recipe = get(name)
    sparsegrow = build(name, **overrides)
    return [*(getattr(avalanche_plugins, cls)(**kw) for cls, kw in recipe.companions.items()),
            sparsegrow]


def _plugin_keywords() -> set[str]:
    from sparsegrow.plugins import SparseGrowPlugin

    return {p.name for p in inspect.signature(SparseGrowPlugin.__init__).parameters.values()
            if p.kind is p.KEYWORD_ONLY}


def _entry(name: str) -> Callable[..., SparseGrowPlugin]:
    recipe = RECIPES[name]

    def entry(**overrides) -> SparseGrowPlugin:
        return build(name, **overrides)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = recipe.doc
    return entry


# One entry function per recipe, named as it; written out (not generated in a loop) so that
# editors and type checkers see them.
default = _entry("default")
late = _entry("late")
lwf = _entry("lwf")
replay = _entry("replay")
replay_progressive = _entry("replay_progressive")
strict = _entry("strict")
blocks = _entry("blocks")
progressive = _entry("progressive")
