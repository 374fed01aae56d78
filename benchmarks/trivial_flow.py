"""The floor of any run on Prefect: a flow with one task that does nothing, on the running
server, from process start to exit (the *Cold start* table's last line).

    python benchmarks/trivial_flow.py
"""

from __future__ import annotations

from prefect import flow, task


@task
def one(x: int) -> int:
    return x + 1


@flow
def trivial(x: int = 1) -> int:
    return one(x)


if __name__ == "__main__":
    trivial()
