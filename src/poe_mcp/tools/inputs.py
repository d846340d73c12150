"""Input types shared by several tools, so each is described (and bounded) in one place.

Descriptions are short on purpose: a client pays for every byte of tools/list in its context.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

Bot = Annotated[str | None, Field(description="Model name (default: server's)")]
Prompt = Annotated[str, Field(min_length=1, description="What to ask or make")]
SessionId = Annotated[str | None, Field(max_length=200, description="Conversation to continue")]
NewSession = Annotated[bool | None, Field(description="Start a new conversation under session_id")]
System = Annotated[str | None, Field(description="System message")]
Attachments = Annotated[
    list[str] | None, Field(description="Files in allowed dirs, https: or data: URLs")
]
Temperature = Annotated[float | None, Field(ge=0, le=2, description="Randomness")]
MaxTokens = Annotated[int | None, Field(ge=1, description="Answer length cap")]
TopP = Annotated[float | None, Field(ge=0, le=1, description="Nucleus sampling")]
Stop = Annotated[list[str] | None, Field(max_length=4, description="Stop sequences")]
Parameters = Annotated[dict[str, Any] | None, Field(description="Model's custom parameters")]
Thinking = Annotated[bool | None, Field(description="Use the model's reasoning")]
ParallelToolCalls = Annotated[bool | None, Field(description="Allow several calls a turn")]
Limit = Annotated[int, Field(ge=1, description="Most to list")]
Stream = Annotated[bool, Field(description="Stream, reporting progress")]
