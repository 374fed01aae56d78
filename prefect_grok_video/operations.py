"""The three operations of the Grok video API and what each accepts, per model: one table.

==========  ==========================  ============================================================
action      route                       takes
==========  ==========================  ============================================================
generate    ``videos/generations``      a prompt; optionally a still (`image`), a `duration`, an
                                        `aspect_ratio` and a `resolution`
edit        ``videos/edits``            a prompt and a `video`; the output matches the input
extend      ``videos/extensions``       a prompt, a `video` and optionally a `duration`; the output
                                        is the input followed by the new seconds
==========  ==========================  ============================================================

`MODELS` holds, per model, the allowed durations, aspect ratios, resolutions and input lengths
of each operation; preflight, `grok-video validate` and the emulator all read it, so a new
model is one line there. A model the table does not list is held to the default model's limits
(the service itself refuses a model it does not know, before any job is made).

Sources (API.md, checked 2026-12): generations take 1–15 s (default 8), seven aspect ratios and
480p or 720p (1080p only on newer models); edits take a clip of up to about 8.7 s; extensions
take a clip of 2–15 s (xAI's SDK docstring says 30: the tighter limit is kept) and add 2–10 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from prefect_grok_video.errors import InputError
from prefect_grok_video.inputs import (
    ImageInput,
    MediaInput,
    VideoInput,
    check_choice,
    check_duration,
    check_prompt,
)
from prefect_grok_video.settings import DEFAULT_MODEL

__all__ = [
    "ACTIONS",
    "ASPECT_RATIOS",
    "DEFAULT_ACTION",
    "MODELS",
    "Action",
    "JobRequest",
    "Limits",
    "ModelLimits",
    "limits_for",
]

Action = Literal["generate", "edit", "extend"]
ACTIONS: tuple[Action, ...] = get_args(Action)
#: What a row without an `action` does: manifests written before there were three stay valid.
DEFAULT_ACTION: Action = "extend"
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
_ROUTES: dict[Action, str] = {
    "generate": "videos/generations",
    "edit": "videos/edits",
    "extend": "videos/extensions",
}


@dataclass(frozen=True)
class Limits:
    """What one operation of one model accepts. An empty range or tuple: not taken at all."""

    action: Action
    #: Whole seconds of new video a request may ask for, (low, high); None: no `duration`.
    durations: tuple[int, int] | None
    #: The duration used when a request gives none (what the service defaults to).
    default_duration: int | None
    aspect_ratios: tuple[str, ...]
    resolutions: tuple[str, ...]
    #: Seconds the input video may last, (low, high); None: the operation takes no video.
    input_seconds: tuple[float, float] | None
    takes_image: bool

    @property
    def route(self) -> str:
        """The path of the submit request, under the base URL."""
        return _ROUTES[self.action]

    @property
    def takes_video(self) -> bool:
        return self.input_seconds is not None

    def takes(self, name: str) -> bool:
        """Whether a request of this operation may carry the field `name`."""
        return {
            "video": self.takes_video,
            "image": self.takes_image,
            "duration": self.durations is not None,
            "aspect_ratio": bool(self.aspect_ratios),
            "resolution": bool(self.resolutions),
        }.get(name, True)

    def output_seconds(self, input_seconds: float | None, duration: int | None) -> float | None:
        """How long the result will be, when that can be known before the job runs."""
        if self.action == "generate":
            return float(duration or self.default_duration or 0)
        if input_seconds is None:
            return None
        if self.action == "edit":
            return input_seconds
        return input_seconds + (duration or self.default_duration or 0)


@dataclass(frozen=True)
class ModelLimits:
    """The limits of one model, operation by operation; the defaults are the base model's."""

    generate_durations: tuple[int, int] = (1, 15)
    generate_default_duration: int = 8
    aspect_ratios: tuple[str, ...] = ASPECT_RATIOS
    resolutions: tuple[str, ...] = ("480p", "720p")
    edit_input_seconds: tuple[float, float] = (1.0, 8.7)
    extend_durations: tuple[int, int] = (2, 10)
    extend_default_duration: int = 6
    extend_input_seconds: tuple[float, float] = (2.0, 15.0)
    _by_action: dict[Action, Limits] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_action: dict[Action, Limits] = {
            "generate": Limits(
                "generate", self.generate_durations, self.generate_default_duration,
                self.aspect_ratios, self.resolutions, None, takes_image=True,
            ),
            "edit": Limits("edit", None, None, (), (), self.edit_input_seconds, False),
            "extend": Limits(
                "extend", self.extend_durations, self.extend_default_duration, (), (),
                self.extend_input_seconds, takes_image=False,
            ),
        }  # fmt: skip
        object.__setattr__(self, "_by_action", by_action)

    def of(self, action: Action) -> Limits:
        """The limits of `action` for this model."""
        return self._by_action[action]


#: Every model the package knows, with its limits; a new model is one line.
MODELS: dict[str, ModelLimits] = {
    DEFAULT_MODEL: ModelLimits(),
    "grok-imagine-video-1.5": ModelLimits(resolutions=("480p", "720p", "1080p")),
}


def limits_for(action: Action, model: str) -> Limits:
    """The limits of `action` on `model` (a model not in `MODELS`: the default model's)."""
    return MODELS.get(model, MODELS[DEFAULT_MODEL]).of(action)


#: How each operation's media field goes on the wire. xAI documents `{"url": ...}` objects for
#: a generation's `image` and an edit's `video` (its REST reference; the platform forwards
#: bodies unchanged), while the platform's extension page shows `video` as a plain string, which
#: is what extensions have always been sent as. The emulator accepts both forms everywhere.
_MEDIA_AS_OBJECT: dict[Action, bool] = {"generate": True, "edit": True, "extend": False}


@dataclass(frozen=True)
class JobRequest:
    """One paid job to submit: the operation and every field that defines it."""

    action: Action
    prompt: str
    model: str = DEFAULT_MODEL
    video: VideoInput | None = field(default=None, repr=False)
    image: ImageInput | None = field(default=None, repr=False)
    duration: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None

    @property
    def limits(self) -> Limits:
        return limits_for(self.action, self.model)

    def checked(self) -> JobRequest:
        """This request with its default duration filled in, once every field was checked
        against the operation's limits; `InputError` naming the first field that breaks one."""
        limits = self.limits
        check_prompt(self.prompt)
        for name in ("video", "image", "duration", "aspect_ratio", "resolution"):
            given = getattr(self, name) is not None
            if given and not limits.takes(name):
                raise InputError(f"{self.action} takes no {name}: leave it out", field=name)
            if not given and name == "video" and limits.takes_video:
                raise InputError(f"{self.action} needs a video", field="video")
        duration = self.duration
        if limits.durations is not None:
            duration = check_duration(
                limits.default_duration if duration is None else duration, limits.durations
            )
        if self.aspect_ratio is not None:
            check_choice(self.aspect_ratio, limits.aspect_ratios, "aspect_ratio")
        if self.resolution is not None:
            check_choice(self.resolution, limits.resolutions, "resolution")
        return JobRequest(
            self.action, self.prompt, self.model, self.video, self.image, duration,
            self.aspect_ratio, self.resolution,
        )  # fmt: skip

    def fields(self) -> dict[str, Any]:
        """The JSON fields of the request but its video or image."""
        values = {
            "model": self.model,
            "prompt": self.prompt,
            "duration": self.duration,
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
        }
        return {name: value for name, value in values.items() if value is not None}

    @property
    def media(self) -> MediaInput | None:
        """The video or image sent with the request, if any."""
        return self.video if self.video is not None else self.image

    @property
    def media_as_object(self) -> bool:
        """Whether the media goes as `{"url": ...}` rather than as a string."""
        return _MEDIA_AS_OBJECT[self.action]
