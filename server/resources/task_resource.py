"""Reader of `task://{id}`: one task of this project in full (tools/delegation), and task ids for completion."""

from __future__ import annotations

import anyio

from server.context import AppContext
from server.resources import not_found


async def read_task(ctx: AppContext, raw_id: str) -> str:
    from tools.delegation.results import TaskView
    from tools.delegation.service import task_store
    from tools.delegation.store import TaskError

    if not (raw_id.isdigit() and 0 < len(raw_id) <= 12):
        raise not_found("invalid_task_id", f"{raw_id[:40]!r} is not a task id.", "Use task://<number>; task_list shows the ids.")
    try:
        task = await anyio.to_thread.run_sync(task_store(ctx).get, int(raw_id))
    except TaskError as exc:
        raise not_found(exc.code, exc.message, "task_list shows this project's tasks and their ids.") from None
    return TaskView.of(task).model_dump_json(indent=1, exclude_none=True, exclude_defaults=True)


def task_ids(ctx: AppContext) -> list[str]:
    from tools.delegation.service import task_store

    return [str(i) for i in task_store(ctx).ids()]


def agent_names(ctx: AppContext) -> list[str]:
    """The seed's roster, then the agents this project's tasks name."""
    from tools.delegation.inputs import ROSTER
    from tools.delegation.service import task_store

    return list(dict.fromkeys([*ROSTER, *task_store(ctx).agents()]))
