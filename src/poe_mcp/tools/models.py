"""Catalog tools and resources: list_models, list_available_models, get_model_info, poe://models."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import (
    CallToolResult,
    Completion,
    CompletionArgument,
    ResourceTemplateReference,
    ToolAnnotations,
)
from pydantic import Field

from ..result_shapes import ModelDetail, ModelEntry, ModelsResult
from ..tool_results import structured_result
from .inputs import Limit
from .registry import ToolTable, state_of

if TYPE_CHECKING:
    from ..server import PoeMCPServer

MODEL_URI = "poe://models/{model_id}"
Modality = Annotated[str | None, Field(description="text/image/video/audio")]
Query = Annotated[str | None, Field(description="Search text")]
ModelLimit = Annotated[Limit, Field(le=500)]
CATALOG = ToolAnnotations(read_only_hint=True, open_world_hint=True)


def _line(m: ModelEntry) -> str:
    price = ""
    if m.pricing and m.pricing.get("input_per_million") is not None:
        price = (
            f"  ${m.pricing['input_per_million']}/${m.pricing['output_per_million']} per 1M tokens"
        )
    elif m.pricing and m.pricing.get("per_request") is not None:
        price = f"  ${m.pricing['per_request']} per request"
    tools = "  tools" if m.supports_tools else ""
    return f"{m.id} ({m.owned_by}) {'+'.join(m.input_modalities)}->{'+'.join(m.output_modalities)}{tools}{price}"


tool = ToolTable()


async def models_result(
    ctx: Context, query, owned_by, input_modality, output_modality, supports_tools, limit
) -> CallToolResult:
    catalog = await state_of(ctx).poe.models()
    found = catalog.filter(query, owned_by, input_modality, output_modality, supports_tools)
    shown = [ModelEntry.of(m) for m in found[:limit]]
    more = (
        f"\n(showing {len(shown)} of {len(found)}; narrow with query or raise limit)"
        if len(found) > len(shown)
        else ""
    )
    text = "\n".join(_line(m) for m in shown) + more if shown else "No model matches those filters."
    if catalog.note:
        text += f"\n({catalog.note})"
    return structured_result(text, ModelsResult(models=shown, total=len(found)).model_dump())


@tool(title="List Poe models", annotations=CATALOG)
async def list_models(
    ctx: Context,
    query: Query = None,
    owned_by: Annotated[str | None, Field(description="e.g. OpenAI, Anthropic")] = None,
    input_modality: Modality = None,
    output_modality: Modality = None,
    supports_tools: Annotated[bool | None, Field(description="Function calling")] = None,
    limit: ModelLimit = 50,
) -> Annotated[CallToolResult, ModelsResult]:
    """Find Poe models by name, provider, modality or tool support, with context size and price."""
    return await models_result(
        ctx, query, owned_by, input_modality, output_modality, supports_tools, limit
    )


@tool(title="List Poe models (compatibility)", annotations=CATALOG)
async def list_available_models(
    ctx: Context, query: Query = None, limit: ModelLimit = 500
) -> Annotated[CallToolResult, ModelsResult]:
    """The Poe catalog, as list_models (for older clients)."""
    return await models_result(ctx, query, None, None, None, None, limit)


@tool(title="Describe one Poe model", annotations=CATALOG)
async def get_model_info(
    model: Annotated[str, Field(min_length=1, description="Model id or name")], ctx: Context
) -> Annotated[CallToolResult, ModelDetail]:
    """One model in full: modalities, context, pricing, custom parameters with schemas."""
    info = ModelDetail.of(await state_of(ctx).poe.model_info(model))
    params = "\n".join(
        f"- {p['name']}: {json.dumps(p['schema'])}"
        + (f" — {p['description']}" if p["description"] else "")
        for p in info.parameter_schemas
    )
    text = (
        f"{_line(info)}\ncontext: {info.context_length}, max output: {info.max_output_tokens}"
        + (f", icon: {info.icon_url}" if info.icon_url else "")
        + f"\n{info.description}"
    )
    return structured_result(
        text + (f"\nparameters:\n{params}" if params else ""), info.model_dump()
    )


def register(mcp: PoeMCPServer) -> None:
    tool.register(mcp)

    @mcp.resource(
        "poe://models", name="models", title="Poe model catalog", mime_type="application/json"
    )
    async def models_resource() -> str:
        catalog = await mcp.state.poe.models()
        return json.dumps([ModelEntry.of(m).model_dump() for m in catalog.models])

    @mcp.completion()
    async def complete_model_id(
        ref: Any, argument: CompletionArgument, context: Any
    ) -> Completion | None:
        """Model ids for `poe://models/{model_id}`, completed from the catalog as the user types."""
        if not (
            isinstance(ref, ResourceTemplateReference)
            and ref.uri == MODEL_URI
            and argument.name == "model_id"
        ):
            return None
        prefix = argument.value.lower()
        found = [
            m.id for m in (await mcp.state.poe.models()).models if m.id.lower().startswith(prefix)
        ]
        return Completion(values=found[:100], total=len(found), has_more=len(found) > 100)

    @mcp.resource(MODEL_URI, name="model", title="One Poe model", mime_type="application/json")
    async def model_resource(model_id: str) -> str:
        return ModelDetail.of(await mcp.state.poe.model_info(model_id)).model_dump_json()
