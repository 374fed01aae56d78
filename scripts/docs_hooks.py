"""mkdocs hook: lay the package out as installed before mkdocstrings reads its source.

griffe, which reads the source for the reference pages, cannot follow the install's mapping of
`flows/` and `blocks/` into the package; mkdocs.yml points it at `.docs-layout/` (git-ignored),
which this fills with a copy of the source (`installed_layout.py`): when mkdocs loads this hook,
since mkdocstrings drops a search path that does not exist yet when it sets up (before any
`on_config` of a hook), and again at each build of `mkdocs serve`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from installed_layout import ROOT, lay_out

LAYOUT = ROOT / ".docs-layout"


def _lay_out_afresh() -> None:
    shutil.rmtree(LAYOUT, ignore_errors=True)
    lay_out(LAYOUT, copy=True)


_lay_out_afresh()
#: Whether the layout made on loading is still the current one (the first build uses it).
_laid_out_on_load = True


def on_config(config: Any) -> Any:
    """Lay the package out afresh for each rebuild of `mkdocs serve` (not for the first
    build, which the layout made on loading serves)."""
    global _laid_out_on_load
    if _laid_out_on_load:
        _laid_out_on_load = False
    else:
        _lay_out_afresh()
    return config
