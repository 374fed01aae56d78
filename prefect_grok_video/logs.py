"""The logger type the package's functions take: a logger, or Prefect's run logger (an adapter)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__all__ = ["Logger"]

if TYPE_CHECKING:
    from typing import TypeAlias

    Logger: TypeAlias = logging.Logger | logging.LoggerAdapter[Any]
else:  # `LoggerAdapter` takes no type argument at run time before Python 3.11
    Logger = logging.Logger | logging.LoggerAdapter
