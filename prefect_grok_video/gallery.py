"""The gallery: `<output>/index.html`, a static page of a run's videos, to look at them.

One card per succeeded row (a `<video controls>` player, its poster frames, prompt, action,
length, cost), then the rows that did not succeed with what to do about each. Every link is
relative to the page (`<id>.mp4`, `<id>.jpg` beside it), so the page works opened from disk
(`file://`) and from a bucket served over HTTP alike; it loads nothing from anywhere else.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from prefect_grok_video.inputs import is_storage_url
from prefect_grok_video.outputs import write_whole
from prefect_grok_video.report import NEXT_STEPS, ItemResult, RunReport

__all__ = ["GALLERY_NAME", "REPORT_NAME", "gallery_html", "write_gallery"]

#: The gallery's file name in the output folder.
GALLERY_NAME = "index.html"
#: The report's file name beside it (what the page is made from, for a reader elsewhere).
REPORT_NAME = "report.json"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; background: #111; color: #eee; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 1rem; }
.card { background: #1c1c1c; border-radius: 8px; padding: .75rem; }
.card video { width: 100%; border-radius: 4px; background: #000; }
.card img { width: 100%; margin-top: .4rem; image-rendering: auto; }
.card p { margin: .3rem 0; font-size: .9rem; } .id { font-weight: 600; }
.meta { color: #aaa; } table { border-collapse: collapse; font-size: .9rem; }
td, th { border-bottom: 1px solid #333; padding: .35rem .6rem; text-align: left; }
"""


def _name(location: str | None) -> str | None:
    """The file name of a saved video or poster (the gallery sits beside it)."""
    if not location:
        return None
    return (
        location.rstrip("/").rsplit("/", 1)[-1]
        if is_storage_url(location)
        else (Path(location).name)
    )


def _card(item: ItemResult) -> str:
    video, poster = _name(item.output), _name(item.thumbnail)
    e = html.escape
    facts = [item.action or "video"]
    if item.video_seconds is not None:
        facts.append(f"{item.video_seconds:.1f} s")
    if item.cost_usd is not None:
        facts.append(f"${item.cost_usd:.2f}")
    facts.append("paid by this run" if item.paid_by_this_run else "from the cache")
    return "\n".join([
        '<div class="card">',
        f'<video controls preload="metadata" src="{e(video or "")}"></video>',
        f'<img src="{e(poster)}" alt="first, middle and last frames of {e(item.id)}">'
        if poster else '<p class="meta">No preview: the video could not be decoded.</p>',
        f'<p class="id">{e(item.id)} <span class="meta">(row {item.row})</span></p>',
        f"<p>{e(item.prompt or '')}</p>",
        f'<p class="meta">{e(" · ".join(facts))} · {e(item.status)}</p>',
        "</div>",
    ])  # fmt: skip


def gallery_html(report: RunReport) -> str:
    """The gallery page of `report`, as HTML text."""
    e = html.escape
    succeeded = [item for item in report.items if item.status == "succeeded" and item.output]
    others = [item for item in report.items if item.status != "succeeded"]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Grok videos: {e(report.summary_line())}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Grok videos: {e(report.summary_line())}</h1>",
        f'<p class="meta">Manifest {e(str(report.manifest))} · finished '
        f"{report.finished_at:%Y-%m-%d %H:%M} UTC</p>",
        '<div class="grid">',
        *(_card(item) for item in succeeded),
        "</div>",
    ]
    if others:
        parts += [
            "<h2>Rows that did not succeed</h2>",
            "<table><tr><th>row</th><th>id</th><th>status</th><th>error</th>"
            "<th>what to do</th></tr>",
            *(
                f"<tr><td>{i.row}</td><td>{e(i.id)}</td><td>{e(i.status)}</td>"
                f"<td>{e(i.error.message if i.error else '')}</td>"
                f"<td>{e(NEXT_STEPS.get(i.status, ''))}</td></tr>"
                for i in others
            ),
            "</table>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_gallery(report: RunReport, folder: str | os.PathLike[str] | None = None) -> str:
    """Write `report` as `report.json` and its gallery as `index.html` in `folder` (default:
    the report's output folder, a path or a storage URL); returns the gallery's location."""
    root = os.fspath(folder if folder is not None else report.output).rstrip("/")
    write_whole(f"{root}/{REPORT_NAME}", report.json_bytes(), b"\n")
    return write_whole(f"{root}/{GALLERY_NAME}", gallery_html(report).encode())
