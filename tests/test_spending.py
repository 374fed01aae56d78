"""Spending: estimates before a run, and a spend cap that stops a run from submitting before it
passes the cap, in one run and across the chunk runs of one run (a budget on the server)."""

from __future__ import annotations

import asyncio

import pytest
from fixtures_emulator import credentials_for
from fixtures_media import make_mp4, write_csv
from fixtures_prefect import delete_limit, report_of

from prefect_grok_video.flows import make_videos
from prefect_grok_video.flows.engine.budget import LocalBudget, SharedBudget
from prefect_grok_video.manifest import load_manifest
from prefect_grok_video.pricing import DEFAULT_PRICES, PriceList

#: The emulator's price: $0.05 a second of output, whatever the model and resolution.
EXACT = {"grok-imagine-video": {"480p": 0.05, "720p": 0.05}}


def test_rows_are_estimated_at_the_seconds_they_make(tmp_path):
    make_mp4(tmp_path / "clip.mp4", seconds=3.0)
    manifest = load_manifest([
        {"id": "g", "action": "generate", "prompt": "p", "duration": 4, "resolution": "480p"},
        {"id": "g2", "action": "generate", "prompt": "p", "duration": 4, "resolution": "480p"},
        {"id": "e", "action": "edit", "video": str(tmp_path / "clip.mp4"), "prompt": "p"},
        {"id": "x", "video": str(tmp_path / "clip.mp4"), "prompt": "p", "duration": 5},
        {"id": "u", "video": "https://cdn.test/a.mp4", "prompt": "p", "duration": 2},
        {"id": "c", "video": "@g", "prompt": "p", "duration": 2},
    ])  # fmt: skip
    g, g2, e, x, u, c = manifest.valid
    prices = PriceList()
    assert prices.row(g) == pytest.approx(4 * 0.05)  # 480p asked
    assert prices.row(e) == pytest.approx(3 * 0.07)  # as its input, at the model's top price
    assert prices.row(x) == pytest.approx((3 + 5) * 0.07)  # the whole clip comes back
    assert prices.seconds(u) == 15 + 2  # a URL's length is not known: the longest it may be
    assert prices.seconds(c) == 4 + 2  # the upstream's length is
    # rows that are the same job count once
    assert prices.rows([g, g2]).jobs == 1
    assert PriceList.with_overrides(EXACT).row(x) == pytest.approx(8 * 0.05)
    assert PriceList.with_overrides({"new-model": {"480p": 1.0}}).prices["new-model"] == {
        "480p": 1.0
    }
    assert DEFAULT_PRICES["grok-imagine-video"] == {"480p": 0.05, "720p": 0.07}


async def test_a_local_budget_refuses_what_would_pass_its_cap_and_stays_stopped():
    budget = LocalBudget(1.0)
    assert await budget.reserve("a#0", 0.4) and await budget.reserve("b#0", 0.4)
    assert await budget.reserve("a#0", 0.4)  # the same job again: reserved once
    assert not await budget.reserve("c#0", 0.4) and budget.reached
    await budget.settle("a#0", 0.1)  # it cost less than expected
    assert budget.committed == pytest.approx(0.5)
    assert not await budget.reserve("d#0", 0.1)  # the cap was reached: no more submissions
    await budget.settle(None, 0.3)  # a job found already done counts at its reported cost
    await budget.release("b#0")  # a submit refused before any job was made
    assert budget.committed == pytest.approx(0.4)


async def test_chunk_runs_share_one_budget_on_the_server(prefect_api):
    name = "grok-video-budget-test"
    await delete_limit(name)
    await SharedBudget.create(name, 1.0)
    chunks = [SharedBudget(name, 1.0) for _ in range(3)]
    asks = [(budget, f"{n}-{i}#0") for n, budget in enumerate(chunks) for i in range(4)]
    granted = await asyncio.gather(*(budget.reserve(key, 0.15) for budget, key in asks))
    assert sum(granted) == 6  # 6 x 15 cents fit in $1, the 7th does not
    # Which six won the race varies: one of them cost less, which frees cents for the others.
    budget, key = next(ask for ask, won in zip(asks, granted, strict=True) if won)
    await budget.settle(key, 0.05)
    assert await SharedBudget(name, 1.0).reserve("late#0", 0.10)
    await delete_limit(name)


async def test_a_capped_run_stops_submitting_and_a_higher_cap_goes_on(
    emulator, prefect_server, tmp_path
):
    rows = [{"id": f"r{n}", "action": "generate", "prompt": f"scene {n}", "duration": 2}
            for n in range(8)]  # fmt: skip
    manifest = write_csv(tmp_path / "m.csv", rows)
    credentials = credentials_for(emulator)

    async def run(cap: float):
        return await report_of(await make_videos(
            str(manifest), output=str(tmp_path / "out"), credentials=credentials,
            submit_rate=50.0, max_cost=cap, prices=EXACT, return_state=True,
        ))  # fmt: skip

    # each job makes 2 s at $0.05: $0.10, estimated exactly; $0.35 allows three
    report = await run(0.35)
    statuses = [item.status for item in report.items]
    assert statuses.count("succeeded") == 3 and statuses.count("skipped") == 5
    assert emulator.state.accepted == 3
    assert report.total_cost_usd == pytest.approx(0.30)
    assert report.stopped_by == "the spend cap of $0.35 was reached: 5 row(s) not submitted"
    skipped = next(item for item in report.items if item.status == "skipped")
    assert skipped.error.code == "spend_cap" and "higher max_cost" in skipped.error.message
    assert skipped.request_id is None

    # the same jobs again count at what they cost: $0.30 of $1.00; five more fit
    report = await run(1.0)
    assert [item.status for item in report.items] == ["succeeded"] * 8
    assert emulator.state.accepted == 8
    assert sorted(emulator.state.accepted_by_input.values()) == [1] * 8
    assert report.total_cost_usd == pytest.approx(0.80)
    assert report.cost_by_action == {"generate": pytest.approx(0.80)}
