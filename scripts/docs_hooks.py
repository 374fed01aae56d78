"""mkdocs hook: lay the package out as installed before mkdocstrings reads its source.

griffe, which reads the source for the reference pages, cannot follow the install's mapping of
`flows/` and `blocks/` into the package; mkdocs.yml points it at `.docs-layout/` (git-ignored),
which this fills with a copy of the source before any page is built (`installed_layout.py`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from installed_layout import ROOT, lay_out

LAYOUT = ROOT / ".docs-layout"


def on_config(config: Any) -> Any:
    """Lay the package out afresh, from the source as it is now."""
    shutil.rmtree(LAYOUT, ignore_errors=True)
    lay_out(LAYOUT, copy=True)
    return config
