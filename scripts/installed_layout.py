"""The package laid out as installed, out of symbolic links, for tools that read source.

The package's source lives in three folders (`prefect_grok_video/`, and `flows/` and `blocks/`
at the repository's root, mapped into it by pyproject.toml's `package-dir`). Python imports it
through the install's mapping, but mypy and griffe (which builds the documentation's reference)
read files and cannot follow it. `lay_out(target)` builds `target/prefect_grok_video` with every
folder where an install puts it: out of symbolic links, or of copies for griffe (which follows a
link back to where it points, and so would miss `flows/` and `blocks/` again).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "prefect_grok_video"


def lay_out(target: Path, *, copy: bool = False) -> dict[str, str]:
    """Link (or `copy`) the package's folders into `target` as installed; returns their paths
    there -> their paths in the repository (both relative, ending in `/`)."""

    def place(source: Path, destination: Path) -> None:
        if not copy:
            destination.symlink_to(source)
        elif source.is_dir():
            shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, destination)

    mapped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    package = target / PACKAGE
    package.mkdir(parents=True)
    for entry in (ROOT / PACKAGE).iterdir():
        if entry.name != "__pycache__":
            place(entry, package / entry.name)
    paths = {f"{PACKAGE}/": f"{PACKAGE}/"}
    for name, folder in mapped.items():
        inside = name.removeprefix(f"{PACKAGE}.").replace(".", "/")
        place(ROOT / folder, package / inside)
        paths[f"{PACKAGE}/{inside}/"] = f"{folder}/"
    return paths
