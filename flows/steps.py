"""Deployment steps of `deployments/prefect.yaml`: how a worker gets this project's code.

`record_project` is the build step: it runs at `prefect deploy` time and records the checkout
being deployed (the current folder, as Prefect's own default pull step does) and the repository
in GROK_VIDEO_REPOSITORY, if set. `fetch_project` is the pull step: it runs on the worker when a
run starts, clones the repository if one was recorded, and otherwise uses the checkout, which
must then be on the worker's machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

from prefect.deployments.steps.pull import git_clone

__all__ = ["REPOSITORY_VARIABLE", "fetch_project", "record_project"]

#: The environment variable `deployments/prefect.yaml` reads the repository's URL from.
REPOSITORY_VARIABLE = "GROK_VIDEO_REPOSITORY"


def _given(repository: str | None) -> str | None:
    """The repository, or None for nothing, an empty value or a `{{ ... }}` left unrendered."""
    repository = (repository or "").strip()
    return repository if repository and "{{" not in repository else None


def record_project(repository: str | None = None) -> dict[str, str]:
    """Record the checkout and the repository for `fetch_project`, and say which runs will use."""
    directory = str(Path.cwd().resolve())
    repository = _given(repository)
    if repository:
        print(f"Runs of this deployment will clone {repository} ({REPOSITORY_VARIABLE}).")
    else:
        print(
            f"{REPOSITORY_VARIABLE} is not set: runs of this deployment will use the checkout "
            f"{directory}, so only workers on this machine can run them. For workers on other "
            f"machines, set {REPOSITORY_VARIABLE} to the repository's URL and deploy again."
        )
    return {"directory": directory, "repository": repository or ""}


def fetch_project(
    repository: str | None = None,
    directory: str | None = None,
    branch: str = "main",
    access_token: str | None = None,
) -> dict[str, str]:
    """Clone `repository` if given, else change to the checkout `directory`; return the folder.

    Raises `RuntimeError`, saying what to do, when there is no repository and the checkout is
    not on this machine (a git error or a missing entrypoint would not say it).
    """
    repository = _given(repository)
    if repository:
        cloned = git_clone(repository=repository, branch=branch, access_token=access_token)
        return cast(dict[str, str], cloned)  # a sync caller gets the dict itself
    if directory and Path(directory).is_dir():
        os.chdir(directory)
        return {"directory": os.getcwd()}
    if directory:
        problem = (
            f"This deployment was made without {REPOSITORY_VARIABLE}, so its runs use the "
            f"checkout it was deployed from, {directory}, which is not on this machine."
        )
    else:
        problem = (
            f"This deployment names neither a repository ({REPOSITORY_VARIABLE}) nor a checkout."
        )
    raise RuntimeError(
        f"{problem} Set {REPOSITORY_VARIABLE} to the repository's URL and deploy again, from "
        f"the repository's root:\n\n    export {REPOSITORY_VARIABLE}=https://...\n"
        "    prefect deploy --prefect-file deployments/prefect.yaml --name make-videos\n\n"
        "or run the worker on the machine that has the checkout."
    )
