"""The earlier Poe MCP server's clients (Anansitrading/poe-proxy-mcp), served when POE_MCP_COMPAT=poe-proxy-mcp.

Its `_v2` tools come back under their old names, arguments and result shapes, and `list_available_models`
answers in its old shape. Off by default: every tool costs bytes of every client's context. MIGRATION.md
maps each of its tools and arguments to this server's.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from . import __version__
from .poe.catalog import ModelInfo
from .result_shapes import ChatResult, UsageOut, chat_facts, handle_line
from .server import PoeMCPServer
from .services.conversations import Answer, Ask
from .tool_results import structured_result
from .tools.chat import answer_result, ask_with_progress
from .tools.inputs import MaxTokens, Prompt, SessionId, Stop, Temperature, TopP, sampling_from
from .tools.registry import state_of

PROFILE = "poe-proxy-mcp"
CHAT = ToolAnnotations(read_only_hint=True, open_world_hint=True)
CATALOG = ToolAnnotations(read_only_hint=True, open_world_hint=True)
LegacyThinking = Annotated[
    bool | dict[str, Any] | None, Field(description="Reasoning on (an object turns it on too)")
]


def thinking_switch(thinking: bool | dict[str, Any] | None) -> bool | None:
    """The earlier server took `thinking` as an object of options; any non-empty one turned thinking on."""
    if isinstance(thinking, dict):
        return bool(thinking) or None
    return thinking


class AskV2Result(ChatResult):
    """ask_poe_v2's result as the earlier server returned it (its OpenAI-client path), plus notes."""

    text: str
    session_id: str
    model: str
    usage: dict[str, int]
    finish_reason: str | None
    cost_usd: float | None = None
    notes: list[str] = []

    @classmethod
    def of(cls, answer: Answer, notes: list[str]) -> AskV2Result:
        usage = answer.completion.usage
        return cls(
            text=answer.completion.text,
            session_id=answer.session_id,
            model=answer.bot,
            usage=vars(usage) if usage else {},
            finish_reason=answer.completion.finish_reason,
            cost_usd=answer.completion.cost_usd,
            notes=notes + answer.completion.notes,
        )

    def handles(self) -> str:
        # The same line as ask_poe's, so a model reads one format whatever the tool.
        return chat_facts(
            self.session_id,
            self.model,
            self.finish_reason,
            UsageOut(**self.usage) if self.usage else None,
            self.cost_usd,
            self.notes,
        )


class LegacyModel(BaseModel):
    name: str
    description: str
    context_length: int | None
    supports_images: bool
    is_claude: bool

    @classmethod
    def of(cls, model: ModelInfo) -> LegacyModel:
        return cls(
            name=model.display_name,
            description=model.description,
            context_length=model.context_length,
            supports_images="image" in model.input_modalities,
            is_claude="claude" in model.id.lower(),
        )


class LegacyModels(BaseModel):
    models: list[LegacyModel]


class ModelsV2(BaseModel):
    """list_available_models_v2's shape, filled from the live catalog instead of a fixed list."""

    text_models: list[dict[str, Any]]
    image_models: list[dict[str, Any]]
    video_models: list[dict[str, Any]]
    audio_models: list[dict[str, Any]]
    features: dict[str, bool]


FEATURES = {
    "function_calling": True,
    "parallel_tools": True,
    "streaming": True,
    "temperature_control": True,
    "max_tokens_control": True,
    "stop_sequences": True,
    "usage_tracking": True,
}


def models_v2(models: list[ModelInfo]) -> ModelsV2:
    def made(kind: str) -> list[dict[str, Any]]:
        return [
            {"name": m.display_name, "type": f"{kind}_generation"}
            for m in models
            if kind in m.output_modalities
        ]

    return ModelsV2(
        text_models=[
            {
                "name": m.display_name,
                "supports_tools": m.supports_tools,
                "max_tokens": m.context_length,
            }
            for m in models
            if m.output_modalities == ("text",)
        ],
        image_models=made("image"),
        video_models=made("video"),
        audio_models=made("audio"),
        features=FEATURES,
    )


def _names(group: list[dict[str, Any]]) -> str:
    return ", ".join(m["name"] for m in group)


def models_v2_text(result: ModelsV2) -> str:
    """Every name, grouped, in one line per group: what the structured content says, without the JSON."""
    groups = {
        "text": result.text_models,
        "image": result.image_models,
        "video": result.video_models,
        "audio": result.audio_models,
    }
    return "\n".join(
        f"{kind} models ({len(group)}): {_names(group)}" for kind, group in groups.items()
    )


def server_info_v2(ctx: Context) -> dict[str, Any]:
    """get_server_info_v2's shape, with this server's facts; nothing registers custom tools here."""
    state = state_of(ctx)
    s = state.settings
    return {
        "version": __version__,
        "features": {
            "legacy_client": s.backend == "fastapi_poe",
            "openai_client": s.backend == "openai",
            "function_calling": True,
            "multi_modal": True,
            "streaming": True,
            "rate_limiting": True,
            "usage_tracking": True,
        },
        "configuration": {
            "debug_mode": s.log_level == "DEBUG",
            "claude_compatible": True,
            "max_file_size_mb": s.max_attachment_mb,
            "session_expiry_minutes": None,  # stored conversations do not expire
        },
        "api_endpoints": {"poe_legacy": s.origin + "/bot/", "poe_openai": s.base_url},
        "registered_tools": [],
    }


class ServerInfoV2(BaseModel):
    version: str
    features: dict[str, bool]
    configuration: dict[str, Any]
    api_endpoints: dict[str, str]
    registered_tools: list[str]


def register(mcp: PoeMCPServer) -> None:
    """Add the earlier server's `_v2` tools, and give list_available_models its earlier shape."""

    @mcp.tool(title="Ask a Poe model (poe-proxy-mcp)", annotations=CHAT)
    async def ask_poe_v2(
        bot: Annotated[str, Field(description="Model name")],
        prompt: Prompt,
        ctx: Context,
        session_id: SessionId = None,
        use_openai_client: Annotated[
            bool, Field(description="Ignored: POE_MCP_BACKEND chooses")
        ] = True,
        max_tokens: MaxTokens = None,
        temperature: Temperature = None,
        top_p: TopP = None,
        stop: Stop = None,
        stream: Annotated[bool, Field(description="Stream, reporting progress")] = False,
        thinking: LegacyThinking = None,
    ) -> Annotated[CallToolResult, AskV2Result]:
        """The earlier server's ask_poe_v2: {text, session_id, model, usage, finish_reason}."""
        notes = []
        if session_id and not (await state_of(ctx).store.load(session_id)).messages:
            notes.append(f"No stored session {session_id!r}: a new conversation started under it")
        answer = await ask_with_progress(
            ctx,
            Ask(
                bot=bot,
                prompt=prompt,
                session_id=session_id,
                sampling=sampling_from(locals()),
                stream=stream,
                thinking=thinking_switch(thinking),
                session_use="either",  # as the earlier server did: an unknown id starts afresh
            ),
        )
        result = AskV2Result.of(answer, notes)
        return answer_result(
            answer.completion, result.model_dump(), [answer.completion.text, result.handles()], ctx
        )

    @mcp.tool(title="List Poe models by kind (poe-proxy-mcp)", annotations=CATALOG)
    async def list_available_models_v2(ctx: Context) -> Annotated[CallToolResult, ModelsV2]:
        """The earlier server's list_available_models_v2, from the live catalog."""
        result = models_v2((await state_of(ctx).poe.models()).models)
        return structured_result(models_v2_text(result), result.model_dump())

    @mcp.tool(
        title="About this server (poe-proxy-mcp)",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def get_server_info_v2(ctx: Context) -> Annotated[CallToolResult, ServerInfoV2]:
        """The earlier server's get_server_info_v2 shape, with this server's facts."""
        info = ServerInfoV2(**server_info_v2(ctx))
        features = ", ".join(k for k, on in info.features.items() if on)
        text = handle_line(f"poe-mcp {info.version}", info.api_endpoints["poe_openai"], features)
        return structured_result(text, info.model_dump())

    mcp.remove_tool("list_available_models")

    @mcp.tool(title="List Poe models (poe-proxy-mcp)", annotations=CATALOG)
    async def list_available_models(ctx: Context) -> Annotated[CallToolResult, LegacyModels]:
        """The catalog as the earlier server listed it: {models: [{name, description, context_length, ...}]}."""
        models = [LegacyModel.of(m) for m in (await state_of(ctx).poe.models()).models]
        text = "\n".join(
            f"{m.name} ({m.context_length or '?'} tokens{', images' if m.supports_images else ''})"
            for m in models
        )
        return structured_result(text, LegacyModels(models=models).model_dump())


__all__ = ["PROFILE", "register", "thinking_switch"]
