"""Test only, never shipped: poe-mcp's own PoeMCPServer with the conformance suite's fixture tools, prompts
and resources added, served over Streamable HTTP exactly as `poe-mcp serve --transport http` serves.

The suite calls fixtures of its reference server (`test_image_content`, `test://static-text`,
`test_simple_prompt`, ...). Registering them on our server class, rather than running the suite's own
server, keeps our overrides under test: schema compaction, the error boundary, resource MIME types and
cache hints, HTTP auth and host checks. Run: `python tests/conformance_server.py --port N`, with the
environment a real server would get.
"""

from __future__ import annotations

import argparse
import base64
import json
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.shared.exceptions import MCPError
from mcp.types import (
    AudioContent,
    CallToolResult,
    ClientCapabilities,
    CreateMessageRequest,
    CreateMessageRequestParams,
    ElicitRequest,
    ElicitRequestFormParams,
    EmbeddedResource,
    ImageContent,
    InputRequiredResult,
    ListRootsRequest,
    MissingRequiredClientCapabilityErrorData,
    SamplingCapability,
    SamplingMessage,
    TextContent,
    TextResourceContents,
)

from poe_mcp.config import load_settings
from poe_mcp.http import build_http_app
from poe_mcp.server import PoeMCPServer, build_server

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mOIjbkHAAKxAZiL22BFAAAAAElFTkSuQmCC"  # 1x1
WAV = base64.b64encode(
    b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00@\x1f\x00\x00\x01\x00\x08\x00"
    b"data\x00\x00\x00\x00"
).decode()
MISSING_CAPABILITY = -32021
JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


def text(value: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=value)])


def add_tools(mcp: PoeMCPServer) -> None:
    @mcp.tool(description="Returns a simple text")
    def test_simple_text() -> CallToolResult:
        return text("This is a simple text response for testing.")

    @mcp.tool(description="Returns an image")
    def test_image_content() -> CallToolResult:
        return CallToolResult(content=[ImageContent(type="image", data=PNG, mime_type="image/png")])

    @mcp.tool(description="Returns audio")
    def test_audio_content() -> CallToolResult:
        return CallToolResult(content=[AudioContent(type="audio", data=WAV, mime_type="audio/wav")])

    @mcp.tool(description="Returns an embedded resource")
    def test_embedded_resource() -> CallToolResult:
        resource = TextResourceContents(
            uri="test://embedded-resource",
            mime_type="text/plain",
            text="This is an embedded resource content.",
        )
        return CallToolResult(content=[EmbeddedResource(type="resource", resource=resource)])

    @mcp.tool(description="Returns text, an image and a resource")
    def test_multiple_content_types() -> CallToolResult:
        resource = TextResourceContents(
            uri="test://mixed-content-resource",
            mime_type="application/json",
            text=json.dumps({"test": "data", "value": 123}),
        )
        return CallToolResult(
            content=[
                TextContent(type="text", text="Multiple content types test:"),
                ImageContent(type="image", data=PNG, mime_type="image/png"),
                EmbeddedResource(type="resource", resource=resource),
            ]
        )

    @mcp.tool(description="Always fails")
    def test_error_handling() -> CallToolResult:
        return CallToolResult(
            content=[
                TextContent(
                    type="text", text="This tool intentionally returns an error for testing"
                )
            ],
            is_error=True,
        )

    @mcp.tool(description="Reports progress 0, 50, 100 of 100")
    async def test_tool_with_progress(ctx: Context) -> CallToolResult:
        for step in (0, 50, 100):
            await ctx.report_progress(step, 100)
            await anyio.sleep(0.05)
        return text("Progress complete")

    @mcp.tool(description="Needs the client's sampling capability")
    async def test_missing_capability(ctx: Context) -> CallToolResult:
        capabilities = ctx.client_capabilities
        if capabilities is None or capabilities.sampling is None:
            required = ClientCapabilities(sampling=SamplingCapability())
            raise MCPError(
                code=MISSING_CAPABILITY,
                message="This tool needs the sampling capability",
                data=MissingRequiredClientCapabilityErrorData(
                    required_capabilities=required
                ).model_dump(by_alias=True, mode="json", exclude_none=True),
            )
        return text("The client declared sampling")

    @mcp.tool(name="json_schema_2020_12_tool", description="Tool with JSON Schema 2020-12 features")
    def json_schema_tool(
        name: str | None = None,
        address: dict[str, Any] | None = None,
        contactMethod: str | None = None,
        phone: str | None = None,
        email: str | None = None,
    ) -> CallToolResult:
        return text(f"Received {name}")

    @mcp.tool(description="Routes by a region sent as an Mcp-Param header too")
    def test_custom_header(region: str) -> CallToolResult:
        return text(f"Region: {region}")

    set_input_schema(mcp, "json_schema_2020_12_tool", JSON_SCHEMA_2020_12)
    set_input_schema(
        mcp,
        "test_custom_header",
        {
            "type": "object",
            "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
            "required": ["region"],
        },
    )


def set_input_schema(mcp: PoeMCPServer, name: str, schema: dict[str, Any]) -> None:
    """The suite checks some schemas arrive exactly as written, keywords a signature cannot say included."""
    registered = mcp._tool_manager.get_tool(name)
    assert registered is not None
    registered.parameters = schema


SEP1034_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {
            "type": "string",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "default": True},
    },
}
SEP1330_SCHEMA = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}
USER_SCHEMA = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}


def add_client_request_tools(mcp: PoeMCPServer) -> None:
    """2025-11-25's server-to-client requests (sampling, elicitation), which poe-mcp itself never makes."""

    async def elicited(ctx: Context, message: str, schema: dict[str, Any]) -> str:
        result = await ctx.session.elicit_form(message, schema, ctx.request_id)
        return f"action={result.action}, content={json.dumps(result.content)}"

    @mcp.tool(description="Asks the client to sample")
    async def test_sampling(prompt: str, ctx: Context) -> CallToolResult:
        message = SamplingMessage(role="user", content=TextContent(type="text", text=prompt))
        answer = await ctx.session.create_message(
            [message], max_tokens=100, related_request_id=ctx.request_id
        )
        said = (
            answer.content.text if isinstance(answer.content, TextContent) else str(answer.content)
        )
        return text(f"LLM response: {said}")

    @mcp.tool(description="Asks the user for input")
    async def test_elicitation(message: str, ctx: Context) -> CallToolResult:
        return text(f"User response: {await elicited(ctx, message, USER_SCHEMA)}")

    @mcp.tool(description="Elicitation with defaults")
    async def test_elicitation_sep1034_defaults(ctx: Context) -> CallToolResult:
        said = await elicited(ctx, "Defaults test", SEP1034_SCHEMA)
        return text(f"Elicitation completed: {said}")

    @mcp.tool(description="Elicitation with every enum form")
    async def test_elicitation_sep1330_enums(ctx: Context) -> CallToolResult:
        said = await elicited(ctx, "Enums test", SEP1330_SCHEMA)
        return text(f"Elicitation completed: {said}")


NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def ask(message: str, schema: dict[str, Any]) -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def sample(prompt: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=prompt))
    return CreateMessageRequest(
        params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens)
    )


def answered(ctx: Context, *keys: str) -> dict[str, Any] | None:
    """The responses to `keys` as plain objects, or None when any of them is missing."""
    responses = ctx.input_responses or {}
    if not all(key in responses for key in keys):
        return None
    return {key: responses[key].model_dump(mode="json", by_alias=True) for key in keys}


def elicited_field(response: dict[str, Any], field: str) -> Any:
    return (response.get("content") or {}).get(field)


def add_multi_round_trip_tools(mcp: PoeMCPServer) -> None:
    """2026-07-28's multi-round-trip requests (`resultType: input_required`), which poe-mcp never makes."""

    @mcp.tool(description="Asks for a name, then greets")
    def test_input_required_result_elicitation(ctx: Context) -> Any:
        got = answered(ctx, "user_name")
        if got is None:
            return InputRequiredResult(
                input_requests={"user_name": ask("What is your name?", NAME_SCHEMA)}
            )
        return text(f"Hello, {elicited_field(got['user_name'], 'name')}!")

    @mcp.tool(description="Asks the client to sample")
    def test_input_required_result_sampling(ctx: Context) -> Any:
        got = answered(ctx, "capital_question")
        if got is None:
            return InputRequiredResult(
                input_requests={"capital_question": sample("What is the capital of France?", 100)}
            )
        return text(f"The model said: {json.dumps(got['capital_question'].get('content'))}")

    @mcp.tool(description="Asks for the client's roots")
    def test_input_required_result_list_roots(ctx: Context) -> Any:
        got = answered(ctx, "client_roots")
        if got is None:
            return InputRequiredResult(input_requests={"client_roots": ListRootsRequest()})
        return text(f"Roots: {json.dumps(got['client_roots'].get('roots'))}")

    @mcp.tool(description="Asks with a request state")
    def test_input_required_result_request_state(ctx: Context) -> Any:
        got = answered(ctx, "confirm")
        if got is None or ctx.request_state != "confirm-v1":
            schema = {
                "type": "object",
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"],
            }
            return InputRequiredResult(
                input_requests={"confirm": ask("Please confirm", schema)},
                request_state="confirm-v1",
            )
        return text(f"state-ok: {elicited_field(got['confirm'], 'ok')}")

    @mcp.tool(description="Asks three things at once")
    def test_input_required_result_multiple_inputs(ctx: Context) -> Any:
        got = answered(ctx, "user_name", "greeting", "client_roots")
        if got is None:
            return InputRequiredResult(
                input_requests={
                    "user_name": ask("What is your name?", NAME_SCHEMA),
                    "greeting": sample("Generate a greeting", 50),
                    "client_roots": ListRootsRequest(),
                },
                request_state="multiple-v1",
            )
        return text(f"Got all three: {elicited_field(got['user_name'], 'name')}")

    @mcp.tool(description="Asks in two rounds")
    def test_input_required_result_multi_round(ctx: Context) -> Any:
        if ctx.request_state == "round-2" and (got := answered(ctx, "step2")):
            return text(f"Favourite colour: {elicited_field(got['step2'], 'color')}")
        if ctx.request_state == "round-1" and answered(ctx, "step1"):
            color = {
                "type": "object",
                "properties": {"color": {"type": "string"}},
                "required": ["color"],
            }
            return InputRequiredResult(
                input_requests={"step2": ask("Step 2: What is your favorite color?", color)},
                request_state="round-2",
            )
        return InputRequiredResult(
            input_requests={"step1": ask("Step 1: What is your name?", NAME_SCHEMA)},
            request_state="round-1",
        )

    @mcp.tool(description="Signs its request state")
    def test_input_required_result_tampered_state(ctx: Context) -> Any:
        # The SDK seals every requestState (RequestStateSecurity): a tampered one never reaches here.
        if ctx.request_state == "signed-v1" and (got := answered(ctx, "user_name")):
            return text(f"Hello, {elicited_field(got['user_name'], 'name')}!")
        return InputRequiredResult(
            input_requests={"user_name": ask("What is your name?", NAME_SCHEMA)},
            request_state="signed-v1",
        )

    @mcp.tool(description="Asks only what the client can answer")
    def test_input_required_result_capabilities(ctx: Context) -> Any:
        if ctx.input_responses:
            return text(f"Answered: {', '.join(sorted(ctx.input_responses))}")
        declared = ctx.client_capabilities or ClientCapabilities()
        wanted: dict[str, Any] = {}
        if declared.elicitation is not None:
            wanted["user_name"] = ask("What is your name?", NAME_SCHEMA)
        if declared.sampling is not None:
            wanted["greeting"] = sample("Generate a greeting", 50)
        if declared.roots is not None:
            wanted["client_roots"] = ListRootsRequest()
        if not wanted:
            return text("The client declared nothing to ask with")
        return InputRequiredResult(input_requests=wanted)

    @mcp.prompt(description="A prompt that asks for context first")
    def test_input_required_result_prompt(ctx: Context) -> Any:
        got = answered(ctx, "user_context")
        if got is None:
            schema = {
                "type": "object",
                "properties": {"context": {"type": "string"}},
                "required": ["context"],
            }
            return InputRequiredResult(
                input_requests={"user_context": ask("What context should the prompt use?", schema)}
            )
        return [UserMessage(f"Context: {elicited_field(got['user_context'], 'context')}")]


def add_resources_and_prompts(mcp: PoeMCPServer) -> None:
    @mcp.resource(
        "test://static-text", name="static-text", description="Static text", mime_type="text/plain"
    )
    def static_text() -> str:
        return "This is the content of the static text resource."

    @mcp.resource(
        "test://static-binary",
        name="static-binary",
        description="Static binary",
        mime_type="image/png",
    )
    def static_binary() -> bytes:
        return base64.b64decode(PNG)

    @mcp.resource(
        "test://template/{id}/data",
        name="template",
        description="Templated data",
        mime_type="application/json",
    )
    def template(id: str) -> str:
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @mcp.prompt(description="A simple prompt")
    def test_simple_prompt() -> list[UserMessage]:
        return [UserMessage("This is a simple prompt for testing.")]

    @mcp.prompt(description="A prompt with arguments")
    def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
        return [UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]

    @mcp.prompt(description="A prompt with an embedded resource")
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
        resource = TextResourceContents(
            uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
        )
        return [
            UserMessage(EmbeddedResource(type="resource", resource=resource)),
            UserMessage("Please process the embedded resource above."),
        ]

    @mcp.prompt(description="A prompt with an image")
    def test_prompt_with_image() -> list[UserMessage]:
        return [
            UserMessage(ImageContent(type="image", data=PNG, mime_type="image/png")),
            UserMessage("Please analyze the image above."),
        ]


def add_task_tools(mcp: PoeMCPServer) -> None:
    """The tasks scenarios' fixtures (SEP-2663), served as tasks by poe-mcp's own tasks extension, the
    one generate_video uses: only their names are added to the tools it runs as tasks."""

    @mcp.tool(description="Greets, at once (never a task)")
    def greet(name: str) -> CallToolResult:
        return text(f"Hello, {name}!")

    @mcp.tool(description="Sleeps for seconds, then answers (a task)")
    async def slow_compute(seconds: float = 1, label: str = "") -> CallToolResult:
        await anyio.sleep(seconds)
        return text(f"Computed {label} after {seconds} s")

    @mcp.tool(description="Fails after a second (a task that requires the extension)")
    async def failing_job() -> CallToolResult:
        await anyio.sleep(1)
        return CallToolResult(
            content=[TextContent(type="text", text="The job failed")], is_error=True
        )

    @mcp.tool(description="Raises a protocol error (a task)")
    async def protocol_error_job() -> CallToolResult:
        await anyio.sleep(0.2)
        raise MCPError(code=-32603, message="The job crashed")

    confirm = {"type": "object", "properties": {"confirm": {"type": "boolean"}}}

    @mcp.tool(description="Asks to confirm, then deletes (a task that waits for input)")
    def confirm_delete(ctx: Context, filename: str = "") -> Any:
        got = answered(ctx, "confirm")
        if got is None:
            return InputRequiredResult(
                input_requests={"confirm": ask(f"Delete {filename}?", confirm)}
            )
        return text(f"Deleted {filename}" if elicited_field(got["confirm"], "confirm") else "Kept")

    @mcp.tool(description="Asks two things at once (a task)")
    def multi_input(ctx: Context) -> Any:
        got = answered(ctx, "first", "second")
        if got is None:
            return InputRequiredResult(
                input_requests={
                    "first": ask("First name?", NAME_SCHEMA),
                    "second": ask("Confirm?", confirm),
                }
            )
        return text(f"Got {elicited_field(got['first'], 'name')}")

    @mcp.tool(description="Asks for a name, then works on as a task")
    def test_tool_with_task(ctx: Context) -> Any:
        got = answered(ctx, "user_name")
        if got is None:
            return InputRequiredResult(
                input_requests={"user_name": ask("What is your name?", NAME_SCHEMA)}
            )
        return text(f"Done for {elicited_field(got['user_name'], 'name')}")

    mcp.tasks.task_tools.update(
        slow_compute="optional",
        failing_job="required",
        protocol_error_job="optional",
        confirm_delete="optional",
        multi_input="optional",
        test_tool_with_task="required",
    )
    mcp.tasks.ask_first.add("test_tool_with_task")


def fixture_server() -> tuple[Any, Any]:
    settings = load_settings()
    server = build_server(settings)
    add_tools(server)
    add_client_request_tools(server)
    add_multi_round_trip_tools(server)
    add_resources_and_prompts(server)
    add_task_tools(server)
    return settings, build_http_app(settings, server)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    settings, app = fixture_server()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level=settings.log_level.lower())


if __name__ == "__main__":
    main()
