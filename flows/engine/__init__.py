"""The machinery under the flows: how a run takes its rows to their outcomes.

Nothing here is called by users; `prefect_grok_video.flows` is what they call. A reader can
follow one row top to bottom in `rows.py` (its life cycle: submit, wait, download, report),
with its collaborators each in a module of its own:

- `run.py`: one run from its manifest to its report (validation, the gate, publishing);
- `rows.py`: every row's life cycle, and the jobs rows share;
- `jobs.py`: one job: submitted (once), waited for, resubmitted after a transient failure;
- `chains.py`: rows whose video is another row's result (`video: @<id>`);
- `outcomes.py`: how a job ended, and the `ItemResult` a row ends with;
- `gate.py` / `slots.py`: the submit rate, shared by every run through a Prefect limit;
- `budget.py`: the spend cap; `claims.py`: submissions claimed across processes;
- `artifacts.py`, `events.py`, `assets.py`, `gallery.py`: what the Prefect UI shows;
- `chunks.py`, `supervision.py`, `outage.py`: chunked runs over workers, and a Prefect API
  that goes away;
- `dispatch.py`: flows and tasks callable from sync code; `results.py`, `options.py`,
  `quiet.py`, `task_run_memory.py`: small pieces the runs share.

This package imports nothing at its top, so that importing one of its modules does not import
the others.
"""
