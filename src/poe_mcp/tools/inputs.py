"""Input types shared by several tools, so each is described (and bounded) in one place."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

Bot = Annotated[str | None, Field(description="Poe model or bot name, case-insensitive (default: the server's default model)")]
Prompt = Annotated[str, Field(min_length=1, description="The message to send")]
SessionId = Annotated[str | None, Field(max_length=200, description="Continue this stored conversation; omit to start a new one")]
System = Annotated[str | None, Field(description="System message for the conversation")]
Attachments = Annotated[
    list[str] | None,
    Field(description="Local paths inside the allowed folders, https:// URLs or data: URLs; images are sent as images"),
]
Temperature = Annotated[float | None, Field(ge=0, le=2, description="Sampling temperature, 0-2")]
MaxTokens = Annotated[int | None, Field(ge=1, description="Upper bound on generated tokens")]
TopP = Annotated[float | None, Field(ge=0, le=1, description="Nucleus sampling, 0-1")]
Stop = Annotated[list[str] | None, Field(max_length=4, description="Stop sequences")]
Parameters = Annotated[
    dict[str, Any] | None,
    Field(description="The bot's own custom parameters (e.g. thinking_budget, web_search, aspect); see get_model_info"),
]
Thinking = Annotated[bool | None, Field(description="Turn on the model's reasoning where it has a switch for it")]
Stream = Annotated[bool, Field(description="Stream from Poe and report progress as text arrives")]
