"""Input types shared by several tools, so each is described (and bounded) in one place.

Descriptions are short on purpose: a client pays for every byte of tools/list in its context.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

Bot = Annotated[str | None, Field(description="Model name (default: server's)")]
Prompt = Annotated[str, Field(min_length=1)]
SessionId = Annotated[str | None, Field(max_length=200, description="Conversation to continue")]
NewSession = Annotated[bool, Field(description="Start a new conversation under session_id")]
System = Annotated[str | None, Field(description="System message")]
Attachments = Annotated[
    list[str] | None, Field(description="Files in allowed dirs, https: or data: URLs")
]
Temperature = Annotated[float | None, Field(ge=0, le=2)]
MaxTokens = Annotated[int | None, Field(ge=1)]
TopP = Annotated[float | None, Field(ge=0, le=1)]
Stop = Annotated[list[str] | None, Field(max_length=4)]
Parameters = Annotated[dict[str, Any] | None, Field(description="Model's custom parameters")]
Thinking = Annotated[bool | None, Field(description="Use the model's reasoning")]
Stream = Annotated[bool, Field(description="Stream, reporting progress")]
