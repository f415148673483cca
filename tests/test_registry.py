"""The layer registry: entry points of ``layerkit.layers``, run-time registration, errors."""
from __future__ import annotations

import sys
from importlib import metadata

import numpy as np
import pytest

import layerkit as lk
from layerkit import registry
from layerkit.registry import (BrokenPluginError, DuplicateLayerError, NotALayerError, RegistryError,
                               UnknownLayerError)

from fake_plugins import fake_site  # noqa: F401  (fixture)

GOOD_MODULE = """
    import numpy as np
    from layerkit import Layer

    class Double(Layer):
        def forward(self, x):
            return 2 * np.asarray(x, dtype=float)

        def backward(self, x, dy):
            return 2 * np.asarray(dy, dtype=float)
"""


@pytest.fixture
def runtime_cleanup():
    """Names registered at run time during a test are removed after it."""
    before = set(registry._runtime)
    yield
    for name in set(registry._runtime) - before:
        registry.unregister(name)


# ------------------------------------------------------------------ built-ins
def test_builtins_come_from_layerkits_own_entry_points():
    declared = {ep.name: ep for ep in metadata.entry_points(group=registry.GROUP)
                if ep.dist is not None and ep.dist.name == "layerkit"}
    builtins = {"linear", "sigmoid", "relu", "softmax", "tanh", "leaky_relu", "elu", "gelu", "softplus",
                "identity", "dropout", "layer_norm", "batch_norm", "batch_norm2d", "embedding", "residual",
                "concatenate", "add", "net"}
    builtins |= {"conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "global_avg_pool1d",
                 "global_avg_pool2d", "flatten"}
    assert builtins == set(declared)
    assert all(ep.value.startswith(("layerkit.layers.", "layerkit.blocks.", "layerkit.net:"))
               for ep in declared.values())
    assert builtins <= set(registry.names())


def test_get_returns_the_classes_and_create_builds_instances():
    assert registry.get("linear") is lk.Linear
    assert registry.get("relu") is lk.ReLU
    assert registry.get("sigmoid") is lk.Sigmoid
    assert registry.get("softmax") is lk.Softmax
    layer = registry.create("linear", n_in=3, n_out=2, rng=0)
    assert isinstance(layer, lk.Linear) and layer.W.shape == (3, 2)


def test_names_are_sorted_and_lowercase():
    names = registry.names()
    assert names == sorted(names)
    assert all(name == name.lower() for name in names)


@pytest.mark.parametrize("spelling", ["ReLU", "RELU", "relu", "Relu"])
def test_names_are_case_insensitive(spelling):
    assert registry.get(spelling) is lk.ReLU
    assert isinstance(registry.create(spelling), lk.ReLU)


def test_name_of_builtin_instances_and_classes():
    assert registry.name_of(lk.Linear(2, 2, rng=0)) == "linear"
    assert registry.name_of(lk.Softmax) == "softmax"


# ------------------------------------------------------------------ errors
def test_unknown_name_suggests_the_closest():
    with pytest.raises(UnknownLayerError, match=r"unknown layer 'sigmoidd'; did you mean 'sigmoid'") as info:
        registry.get("sigmoidd")
    assert isinstance(info.value, RegistryError) and isinstance(info.value, ValueError)
    with pytest.raises(UnknownLayerError, match=r"did you mean 'linear'"):
        registry.create("Linaer", n_in=2, n_out=2)


def test_unknown_name_without_close_match_lists_installed_layers():
    with pytest.raises(UnknownLayerError, match=r"unknown layer 'zzz' \(installed layers: .*linear.*relu"):
        registry.get("zzz")


@pytest.mark.parametrize("bad", [None, 3, ""])
def test_name_must_be_a_non_empty_string(bad):
    with pytest.raises(TypeError, match="layer name must be a non-empty string"):
        registry.get(bad)


def test_create_names_the_layer_when_arguments_are_rejected():
    with pytest.raises(TypeError, match=r"layer 'linear' \(Linear\) rejected its arguments \{'n_in': 3\}"):
        registry.create("linear", n_in=3)


def test_broken_plugin_names_plugin_distribution_and_error_and_spares_others(fake_site):
    fake_site("broken-layers", {"shaky": "broken_mod:Shaky", "double_b": "good_mod_b:Double"},
              {"broken_mod": "import numpy\nraise ImportError('needs the missing package frobnicate')\n",
               "good_mod_b": GOOD_MODULE})
    assert {"shaky", "double_b", "relu"} <= set(registry.names())
    with pytest.raises(BrokenPluginError,
                       match=r"layer plugin 'shaky' \(broken_mod:Shaky\) from distribution broken-layers "
                             r"failed to import: ImportError: needs the missing package frobnicate") as info:
        registry.get("shaky")
    assert isinstance(info.value, RegistryError)
    assert isinstance(info.value.__cause__, ImportError)
    # the other layers, of layerkit and of the same distribution, still work
    assert registry.get("relu") is lk.ReLU
    assert registry.get("double_b").__name__ == "Double"
    assert "shaky" in registry.names()
    # and the error is not a one-off: asking again says the same
    with pytest.raises(BrokenPluginError, match="failed to import"):
        registry.create("shaky")


def test_plugin_raising_any_exception_at_import_is_a_broken_plugin(fake_site):
    fake_site("zero-layers", {"zero": "zero_mod:Zero"}, {"zero_mod": "1 / 0\n"})
    with pytest.raises(BrokenPluginError, match=r"zero-layers failed to import: ZeroDivisionError: division by zero"):
        registry.get("zero")


def test_plugin_whose_attribute_is_missing_is_a_broken_plugin(fake_site):
    fake_site("typo-layers", {"typo": "typo_mod:Tpyo"}, {"typo_mod": GOOD_MODULE})
    with pytest.raises(BrokenPluginError, match=r"'typo' \(typo_mod:Tpyo\) from distribution typo-layers.*Tpyo"):
        registry.get("typo")


@pytest.mark.parametrize("target, what", [
    ("notlayer_mod:make_layer", r"it is function <function make_layer"),
    ("notlayer_mod:Plain", r"it is class notlayer_mod.Plain"),
    ("notlayer_mod:NUMBER", r"it is int 42"),
])
def test_entry_point_that_is_not_a_layer_subclass_says_what_it_is(fake_site, target, what):
    fake_site("odd-layers", {"odd": target}, {"notlayer_mod": """
        def make_layer():
            return None

        class Plain:
            def forward(self, x):
                return x

        NUMBER = 42
    """})
    with pytest.raises(NotALayerError,
                       match=rf"layer plugin 'odd' \({target}\) from distribution odd-layers is not a "
                             rf"layerkit.Layer subclass: {what}") as info:
        registry.get("odd")
    assert isinstance(info.value, RegistryError) and isinstance(info.value, TypeError)


def test_two_distributions_claiming_one_name_is_an_error_naming_both(fake_site):
    fake_site("alpha-layers", {"fancy": "alpha_mod:Double"}, {"alpha_mod": GOOD_MODULE})
    fake_site("beta-layers", {"Fancy": "beta_mod:Double"}, {"beta_mod": GOOD_MODULE}, folder="site2")
    assert registry.names().count("fancy") == 1
    with pytest.raises(DuplicateLayerError, match=r"'fancy' is claimed by distribution (alpha|beta)-layers") as info:
        registry.get("fancy")
    message = str(info.value)
    assert "alpha-layers (alpha_mod:Double)" in message and "beta-layers (beta_mod:Double)" in message
    # no silent winner: neither module was even imported
    assert "alpha_mod" not in sys.modules and "beta_mod" not in sys.modules


def test_one_distribution_seen_twice_on_the_path_is_not_a_duplicate(fake_site):
    fake_site("twin-layers", {"twin": "twin_mod:Double"}, {"twin_mod": GOOD_MODULE})
    fake_site("twin-layers", {"twin": "twin_mod:Double"}, {}, folder="site2")
    assert registry.get("twin").__name__ == "Double"


# ------------------------------------------------------------------ laziness, cache, refresh
def test_listing_names_imports_no_plugin(fake_site):
    fake_site("lazy-layers", {"lazy": "lazy_mod:Double"}, {"lazy_mod": GOOD_MODULE})
    assert "lazy" in registry.names()
    assert "lazy_mod" not in sys.modules
    cls = registry.get("lazy")
    assert "lazy_mod" in sys.modules and cls is sys.modules["lazy_mod"].Double
    assert registry.get("LAZY") is cls  # cached: the same class object
    np.testing.assert_array_equal(registry.create("lazy").forward(np.ones((1, 2))), [[2.0, 2.0]])


def test_refresh_finds_a_plugin_installed_in_a_running_process(fake_site):
    assert "late" not in registry.names()
    fake_site("late-layers", {"late": "late_mod:Double"}, {"late_mod": GOOD_MODULE}, refresh=False)
    assert "late" not in registry.names()  # results are cached ...
    with pytest.raises(UnknownLayerError):
        registry.get("late")
    registry.refresh()  # ... until refreshed
    assert "late" in registry.names()
    assert registry.get("late").__name__ == "Double"


# ------------------------------------------------------------------ run-time registration
class Square(lk.Layer):
    def forward(self, x):
        return np.asarray(x, dtype=float) ** 2

    def backward(self, x, dy):
        return 2 * np.asarray(x, dtype=float) * dy


def test_register_function_and_unregister(runtime_cleanup):
    assert registry.register("Square", Square) is Square
    assert "square" in registry.names()
    assert registry.get("SQUARE") is Square
    assert registry.name_of(Square()) == "square"
    registry.unregister("square")
    assert "square" not in registry.names()
    with pytest.raises(UnknownLayerError, match="unknown layer 'square'"):
        registry.get("square")
    with pytest.raises(UnknownLayerError, match="no run-time registration named 'square'"):
        registry.unregister("square")


def test_register_as_decorator(runtime_cleanup):
    @registry.register("cube")
    class Cube(lk.Layer):
        def forward(self, x):
            return np.asarray(x) ** 3

        def backward(self, x, dy):
            return 3 * np.asarray(x) ** 2 * dy

    assert isinstance(Cube, type) and registry.get("cube") is Cube
    np.testing.assert_array_equal(registry.create("cube").forward(np.full((1, 2), 2.0)), [[8.0, 8.0]])


def test_register_rejects_non_layers(runtime_cleanup):
    with pytest.raises(NotALayerError, match=r"run-time registration 'plain' is not a layerkit.Layer subclass: "
                                             r"it is class .*Plain"):
        registry.register("plain", type("Plain", (), {}))
    with pytest.raises(NotALayerError, match="it is function"):
        registry.register("func", lambda x: x)
    assert "plain" not in registry.names()


def test_register_cannot_take_an_installed_name(runtime_cleanup):
    with pytest.raises(DuplicateLayerError, match=r"'ReLU' is already installed by distribution layerkit"):
        registry.register("ReLU", Square)
    with pytest.raises(DuplicateLayerError, match="already installed"):
        registry.register("relu", Square, replace=True)
    assert registry.get("relu") is lk.ReLU


def test_register_another_class_under_a_taken_name_needs_replace(runtime_cleanup):
    registry.register("sq", Square)
    other = type("Other", (Square,), {})
    with pytest.raises(DuplicateLayerError, match=r"'sq' is already registered at run time to .*Square; "
                                                  r"pass replace=True"):
        registry.register("sq", other)
    assert registry.get("sq") is Square
    registry.register("sq", other, replace=True)
    assert registry.get("sq") is other


def test_re_registering_the_same_class_replaces_it(runtime_cleanup):
    registry.register("sq", Square)
    # a re-run notebook cell defines a new class object with the same module and name
    again = type("Square", (lk.Layer,), {"__module__": Square.__module__, "__qualname__": "Square"})
    registry.register("sq", again)
    assert registry.get("sq") is again


def test_runtime_name_later_installed_by_a_plugin_is_a_duplicate(fake_site, runtime_cleanup):
    registry.register("clash", Square)
    fake_site("clash-layers", {"clash": "clash_mod:Double"}, {"clash_mod": GOOD_MODULE})
    with pytest.raises(DuplicateLayerError, match=r"'clash' is registered at run time \(.*Square\) and installed "
                                                  r"by distribution clash-layers \(clash_mod:Double\)"):
        registry.get("clash")


def test_name_of_an_unregistered_class_says_how_to_register():
    with pytest.raises(UnknownLayerError, match=r"layer class .*Square is not registered; add an entry point in "
                                                r"group 'layerkit.layers' or call layerkit.registry.register"):
        registry.name_of(Square())


def test_name_of_a_plugin_class_not_yet_loaded(fake_site):
    fake_site("named-layers", {"named": "named_mod:Double"}, {"named_mod": GOOD_MODULE})
    import named_mod  # imported directly, not through the registry

    assert registry.name_of(named_mod.Double) == "named"
