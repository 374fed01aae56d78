"""Type-check the package with mypy in strict mode, as it is installed.

    python scripts/typecheck.py

mypy cannot follow the install's mapping of `flows/` and `blocks/` into the package, so
this runs `mypy --strict` (options in pyproject.toml, `[tool.mypy]`) on the package laid out as
installed (`installed_layout.py`), and prints its findings with the repository's own paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from installed_layout import PACKAGE, ROOT, lay_out


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="typecheck-") as folder:
        paths = lay_out(Path(folder))
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
             "-p", PACKAGE],
            cwd=folder, capture_output=True, text=True, env={**os.environ, "MYPYPATH": folder},
        )  # fmt: skip
    for line in (result.stdout + result.stderr).splitlines():
        for installed, here in sorted(paths.items(), key=lambda item: -len(item[0])):
            if line.startswith(installed):
                line = here + line.removeprefix(installed)
                break
        print(line)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
