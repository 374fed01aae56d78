"""Flows and tasks that return their result to a sync caller and a coroutine to an async one.

Prefect 3.9 gives a coroutine to whoever calls an async flow or task, so in a sync flow, a sync
task or a plain script `generate_video(...)` would submit nothing and say nothing. Prefect's
integrations solve this for their methods with `async_dispatch`: one callable that returns a
coroutine to an async caller and the result to a sync one. The public flows and tasks of this
package do the same, by the same rule:

- an async caller (an async flow or task, or code with an event loop running, like a
  notebook) gets the coroutine, to `await` or `asyncio.gather`;
- a sync caller (a sync flow or task, or a plain script) gets the result: the run goes to its
  end on Prefect's run-sync event loop, as Prefect runs async code for sync callers.

`.aio(...)` is the call as a coroutine whoever calls (`asyncio.run(make_videos.aio(...))`, the
0.1 way, works with it); `.submit()` and `.map()` are Prefect's own and unchanged; `.fn` is the
bare coroutine function.

For a type checker a call returns the result (what sync callers get, as Prefect types its
`async_dispatch` methods) and `.aio(...)` the coroutine: typed async code awaits `.aio(...)`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from prefect import Flow, Task
from prefect.context import get_run_context
from prefect.exceptions import MissingContextError
from prefect.utilities.asyncutils import run_coro_as_sync
from typing_extensions import ParamSpec, Self

__all__ = ["SyncCallableFlow", "SyncCallableTask", "caller_is_async", "sync_callable"]

Callable_ = TypeVar("Callable_", Flow, Task)  # type: ignore[type-arg]
P = ParamSpec("P")
R = TypeVar("R")


def caller_is_async() -> bool:
    """Whether the code calling now can `await`: inside a flow or task run, whether that run's
    function is async; outside one, whether an event loop is running in this thread (the rule
    of Prefect's `async_dispatch`)."""
    try:
        context = get_run_context()
    except MissingContextError:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True
    running = getattr(context, "task", None) or getattr(context, "flow", None)
    return bool(getattr(running, "isasync", True))


def _sync_callable_class(base: type[Callable_]) -> type[Callable_]:
    """`base` (Prefect's `Flow` or `Task`) with calls from sync callers run to their end."""

    class SyncCallable(base):  # type: ignore[valid-type,misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            call = base.__call__(self, *args, **kwargs)
            if inspect.iscoroutine(call) and not caller_is_async():
                return run_coro_as_sync(call)
            return call

        def aio(self, *args: Any, **kwargs: Any) -> Any:
            """The call as a coroutine whoever calls, e.g. for `asyncio.run(make_videos.aio(
            ...))` (as `.aio` of Prefect's `async_dispatch` methods)."""
            return base.__call__(self, *args, **kwargs)

        def with_options(self, *args: Any, **kwargs: Any) -> Any:
            """Prefect's `with_options`, the copy callable from sync code too."""
            copy = base.with_options(self, *args, **kwargs)
            copy.__class__ = type(self)
            return copy

    name = f"SyncCallable{base.__name__}"
    SyncCallable.__name__ = SyncCallable.__qualname__ = name
    SyncCallable.__doc__ = (
        f"An async Prefect {base.__name__.lower()} whose sync callers get its result."
    )
    return SyncCallable


if TYPE_CHECKING:  # what the classes made below are, as a type checker sees them

    class _SyncCallable(Generic[P, R]):
        @overload
        def __call__(self, *args: Any, return_state: Literal[True], **kwargs: Any) -> Any: ...

        @overload
        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

        def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

        def aio(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]: ...

        def with_options(self, **kwargs: Any) -> Self: ...

    class SyncCallableFlow(_SyncCallable[P, R], Flow[P, Coroutine[Any, Any, R]]):  # type: ignore[misc]
        """An async Prefect flow whose sync callers get its result."""

    class SyncCallableTask(_SyncCallable[P, R], Task[P, Coroutine[Any, Any, R]]):  # type: ignore[misc]
        """An async Prefect task whose sync callers get its result."""

else:
    #: An async flow that returns its result to a sync caller (a class of its own, not a
    #: mixin: `sync_callable` swaps the class of a flow made by `@flow`, which needs Prefect's
    #: layout).
    SyncCallableFlow = _sync_callable_class(Flow)
    #: An async task that returns its result to a sync caller.
    SyncCallableTask = _sync_callable_class(Task)


@overload
def sync_callable(flow_or_task: Flow[P, Coroutine[Any, Any, R]]) -> SyncCallableFlow[P, R]: ...


@overload
def sync_callable(flow_or_task: Task[P, Coroutine[Any, Any, R]]) -> SyncCallableTask[P, R]: ...


def sync_callable(flow_or_task: Any) -> Any:
    """Make an async flow or task (made by `@flow` or `@task`) callable from sync code too."""
    if not inspect.iscoroutinefunction(flow_or_task.fn):
        raise TypeError(f"{flow_or_task.name} is not async: it needs no dispatch")
    flow_or_task.__class__ = (
        SyncCallableFlow if isinstance(flow_or_task, Flow) else SyncCallableTask
    )
    return flow_or_task
