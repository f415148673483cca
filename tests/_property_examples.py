"""How many examples each property test draws: its quick size in CI, more for a long run."""
from __future__ import annotations

import os


def examples(quick: int) -> int:
    """``quick``, or ``LAYERKIT_PROPERTY_EXAMPLES`` when that is set and larger.

    ``LAYERKIT_PROPERTY_EXAMPLES=N python -m pytest tests/test_properties*.py -s`` makes every
    property test draw at least ``N`` examples (the long run); unset, CI runs the quick sizes.
    """
    value = os.environ.get("LAYERKIT_PROPERTY_EXAMPLES", "").strip()
    if not value:
        return quick
    try:
        wanted = int(value)
    except ValueError:
        raise ValueError(f"LAYERKIT_PROPERTY_EXAMPLES must be a whole number of examples, got {value!r}") from None
    return max(quick, wanted)
