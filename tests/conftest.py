"""Shared pytest configuration of layerkit's own tests."""

# pytester runs pytest inside a temporary directory (tests of layerkit's pytest plugin).
pytest_plugins = ["pytester"]
