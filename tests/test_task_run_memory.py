"""flows/engine/task_run_memory.py against Prefect's real flow-run context: what it keeps of each
task run is there (in the shape the module reads), and is gone once forgotten. Fails when a
Prefect release changes `FlowRunContext.run_results` or `task_run_assets`."""

from __future__ import annotations

from uuid import UUID

from prefect import flow, task
from prefect.assets import materialize
from prefect.context import FlowRunContext
from pydantic import BaseModel

from prefect_grok_video.flows.engine.task_run_memory import TaskRunMemory


class Made(BaseModel):
    name: str
    size: int


@task
async def make(number: int) -> Made:
    return Made(name=f"thing-{number}", size=number * 1000)


def _kept(context: FlowRunContext, task_run_ids: set[UUID]) -> int:
    """Entries of `run_results` that are results of these task runs."""
    return sum(
        entry[0].state_details.task_run_id in task_run_ids for entry in context.run_results.values()
    )


async def test_forgotten_task_runs_leave_the_flow_runs_context(prefect_api):
    @flow
    async def many() -> dict[str, int]:
        context = FlowRunContext.get()
        memory = TaskRunMemory(batch=4)
        ids: list[UUID] = []
        for number in range(1, 9):
            state = await make(number, return_state=True)
            ids.append(state.state_details.task_run_id)
        kept_before = _kept(context, set(ids))
        memory.forget(ids[:3])  # under the batch: not swept yet
        after_three = _kept(context, set(ids))
        memory.forget(ids[3:6])  # the batch is full: swept
        after_six = _kept(context, set(ids))
        memory.sweep()
        return {"before": kept_before, "three": after_three, "six": after_six,
                "left": _kept(context, set(ids[6:]))}  # fmt: skip

    kept = await many()
    # each result is kept for itself and each of its fields (name, size)
    assert kept["before"] == 8 * 3
    assert kept["three"] == 8 * 3
    assert kept["six"] == 2 * 3
    assert kept["left"] == 2 * 3


async def test_a_materializing_task_runs_assets_are_forgotten_at_once(prefect_api):
    @flow
    async def materializing() -> tuple[int, int]:
        context = FlowRunContext.get()
        made = materialize("file:///tmp/grok-video-memory-test.mp4")(make.fn)
        state = await made(1, return_state=True)
        task_run_id = state.state_details.task_run_id
        before = len(context.task_run_assets.get(task_run_id, ()))
        TaskRunMemory().forget([task_run_id])
        return before, len(context.task_run_assets.get(task_run_id, ()))

    assert await materializing() == (1, 0)


def test_outside_a_flow_run_there_is_nothing_to_forget():
    memory = TaskRunMemory()
    memory.forget([UUID(int=1)])
    memory.sweep()
