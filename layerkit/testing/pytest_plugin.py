"""layerkit's pytest plugin (the ``layer_gradcheck`` fixture and marker, ``--layerkit-gradcheck``).

pytest loads it through the ``pytest11`` entry point from the top-level module
``_layerkit_pytest_plugin``, which does not import ``layerkit`` until a test uses
it; this name is the same module, for code and documentation that refer to it here.
"""
import sys

import _layerkit_pytest_plugin

sys.modules[__name__] = _layerkit_pytest_plugin
