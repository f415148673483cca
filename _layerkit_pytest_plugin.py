"""layerkit's pytest plugin, loaded through the ``pytest11`` entry point.

This is a top-level module, not a submodule of ``layerkit``, so that pytest can
load it without running ``layerkit/__init__.py`` (which imports NumPy, SciPy
and the compiled core): every pytest run in every project with layerkit
installed loads it, and it must cost nothing there, and must not stop pytest
when layerkit itself is broken. ``layerkit.testing.pytest_plugin`` is the same
module under its documented name.

Installing layerkit gives every project:

- the ``layer_gradcheck`` fixture: ``layer_gradcheck(layer, x=None, **options)``
  runs ``layerkit.testing.assert_grad``; a ``@pytest.mark.layer_gradcheck(rtol=...,
  atol=..., ...)`` marker on the test sets default options;
- ``--layerkit-gradcheck``: one extra test per registered layer (layerkit's own
  and every installed plugin's, from ``layerkit.registry``), named
  ``layerkit-gradcheck::<name>``. Each builds ``cls(**cls.example_kwargs)``,
  draws an input of ``cls.example_input_shape`` away from ``cls.kinks`` and
  asserts its gradients. A plugin that fails to import or to build gives a
  failing test that names it; the session goes on.
- ``--layerkit-gradcheck-only NAME[,NAME...]``: the same for the named layers only.

Nothing beyond pytest is imported here until a fixture or a generated test runs, or
``--layerkit-gradcheck`` collects the registered layers. If layerkit cannot be imported
then, the error appears there: in the tests that use the fixture, or as a failing
``layerkit-gradcheck::import`` test.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

NODE_PREFIX = "layerkit-gradcheck"
MARKER = "layer_gradcheck"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("layerkit", "layerkit gradient checks")
    group.addoption(
        "--layerkit-gradcheck", action="store_true", default=False,
        help="add one test per registered layerkit layer (built-ins and installed plugins) that checks "
             "its gradients against central finite differences",
    )
    group.addoption(
        "--layerkit-gradcheck-only", metavar="NAME[,NAME...]", default=None,
        help="like --layerkit-gradcheck, for these registered layer names only",
    )
    group.addoption(
        "--layerkit-gradcheck-seed", metavar="SEED", type=int, default=0,
        help="seed of the inputs, dy and coordinate samples of the generated checks (default 0)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): default options (rtol, atol, eps, seed, max_coords, directions, reset) "
        "of the layer_gradcheck fixture in this test",
    )


@pytest.fixture
def layer_gradcheck(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``assert_grad`` with the options of the test's ``layer_gradcheck`` marker as defaults.

    Call it as ``layer_gradcheck(layer, x=None, **options)``; it returns the
    ``GradReport`` or raises ``AssertionError`` naming the failing tensor.
    """
    from layerkit.testing.gradcheck import assert_grad  # here, not at plugin load: see the module docstring

    marker = request.node.get_closest_marker(MARKER)
    if marker is not None and marker.args:
        raise TypeError(f"@pytest.mark.{MARKER} takes keyword options only (rtol=..., atol=...), got {marker.args}")
    defaults = dict(marker.kwargs) if marker is not None else {}

    def check(layer: Any, x: Any = None, **options: Any) -> Any:
        return assert_grad(layer, x, **{**defaults, **options})

    return check


def _requested_names(config: pytest.Config) -> list[str] | None:
    """Layer names to check: all registered (``[]`` filter absent) or the ``-only`` list; ``None`` if off."""
    only = config.getoption("--layerkit-gradcheck-only")
    if only is not None:
        names = [name.strip().lower() for name in only.split(",") if name.strip()]
        if not names:
            raise pytest.UsageError(f"--layerkit-gradcheck-only expects NAME[,NAME...], got {only!r}")
        return names
    return [] if config.getoption("--layerkit-gradcheck") else None


class LayerGradcheckError(Exception):
    """A registered layer could not be set up for its generated gradient check."""


class LayerGradcheckItem(pytest.Item):
    """The generated gradient check of one registered layer."""

    def __init__(self, *, layer_name: str, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer_name = layer_name
        self.seed = seed

    def runtest(self) -> None:
        import numpy as np

        from layerkit.testing.gradcheck import GradcheckError, assert_grad, random_input

        cls, kwargs, layer = self._build_layer()
        rng = np.random.default_rng(self.seed)
        shape = tuple(cls.example_input_shape)
        example_input = getattr(layer, "example_input", None)  # integer indices (Embedding), for instance
        if callable(example_input):
            x = example_input(rng)
        else:
            x = random_input(shape, kinks=tuple(getattr(cls, "kinks", ())), seed=rng)
        try:
            assert_grad(layer, x, seed=int(rng.integers(2**31)))
        except (AssertionError, GradcheckError):
            raise
        except Exception as error:
            raise LayerGradcheckError(
                f"{layer!r} raised {type(error).__name__} during its gradient check (built with "
                f"example_kwargs={kwargs}, input of example_input_shape={shape}): {error}"
            ) from error

    def _build_layer(self) -> tuple[type, dict[str, Any], Any]:
        """The registered class, its ``example_kwargs`` and ``cls(**example_kwargs)``."""
        from layerkit import registry

        names = registry.names()
        if self.layer_name not in names:
            raise LayerGradcheckError(
                f"--layerkit-gradcheck-only: no registered layer named {self.layer_name!r} "
                f"(registered: {', '.join(names) or 'none'})"
            )
        cls = registry.get(self.layer_name)
        kwargs = dict(getattr(cls, "example_kwargs", None) or {})
        try:
            return cls, kwargs, cls(**kwargs)
        except Exception as error:
            raise LayerGradcheckError(
                f"layer {self.layer_name!r} ({cls.__module__}.{cls.__qualname__}) could not be built as "
                f"cls(**example_kwargs) with example_kwargs={kwargs}: {type(error).__name__}: {error}. "
                "Declare small constructor arguments in the class attribute example_kwargs"
            ) from error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        error = excinfo.value
        if isinstance(error, (AssertionError, LayerGradcheckError)) or _is_layerkit_error(error):
            text = f"layerkit gradient check of registered layer {self.layer_name!r}:\n{error}"
            if error.__cause__ is not None:  # where the layer or plugin itself failed
                text += "\n\n" + str(pytest.ExceptionInfo.from_exception(error.__cause__).getrepr(style="short"))
            return text
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"{NODE_PREFIX}::{self.layer_name}"


def _is_layerkit_error(error: BaseException) -> bool:
    """An error of layerkit's registry or gradient checker (without importing layerkit to ask)."""
    return type(error).__module__ in ("layerkit.registry", "layerkit.testing.gradcheck")


class LayerkitImportItem(pytest.Item):
    """Stands for the generated checks when layerkit itself cannot be imported: fails with the reason."""

    def __init__(self, *, error: BaseException, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        return (f"--layerkit-gradcheck: layerkit could not be imported, so no layer could be checked:\n"
                f"{type(self.error).__name__}: {self.error}")

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"{NODE_PREFIX}::import"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Append one ``LayerGradcheckItem`` per requested layer (before ``-k``/``-m`` deselect)."""
    requested = _requested_names(config)
    if requested is None:
        return
    try:
        from layerkit import registry

        names = registry.names()
    except Exception as error:  # a broken install: one failing test says why, the session goes on
        items.append(LayerkitImportItem.from_parent(
            session, name=f"{NODE_PREFIX}[import]", nodeid=f"{NODE_PREFIX}::import", error=error,
        ))
        return
    if not requested:
        requested = names
    seed = config.getoption("--layerkit-gradcheck-seed")
    for name in requested:
        items.append(LayerGradcheckItem.from_parent(
            session, name=f"{NODE_PREFIX}[{name}]", nodeid=f"{NODE_PREFIX}::{name}", layer_name=name, seed=seed,
        ))
