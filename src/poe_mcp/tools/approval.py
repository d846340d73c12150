"""Asking the person before an expensive call, through MCP elicitation in both protocol eras.

2025-11-25: an `elicitation/create` request mid-call (the SDK's `ctx.elicit`). 2026-07-28 has no
server-to-client requests: the call returns `input_required` with the question (MRTR), nothing is
sent to Poe, and the client calls again with the person's answer and the (sealed) request state,
which pins the answer to the very estimate it was given for.
"""

from __future__ import annotations

from mcp.server.elicitation import render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp.types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from ..services.spend import Approver, Quote, confirmation_required
from ..tool_results import InputNeeded

# The key of our one question in `input_requests` / `input_responses`.
QUESTION = "poe_mcp_confirm_cost"
INPUT_REQUIRED_VERSION = "2026-07-28"


class CostConfirmation(BaseModel):
    """The form: the cost is in the message; accepting with `proceed` sends the call."""

    proceed: bool = Field(default=True, title="Send it", description="Spend this on the call")


def can_elicit(ctx: Context) -> bool:
    """Whether the client declared form elicitation (a bare `elicitation: {}` means form)."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _modern(ctx: Context) -> bool:
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION)


def mcp_approver(ctx: Context, confirm: bool | None) -> Approver:
    """The person's yes or no for a call above POE_MCP_CONFIRM_ABOVE_USD, asked through the client."""

    async def approve(quote: Quote) -> bool:
        from .registry import state_of

        settings = state_of(ctx).settings
        if confirm and settings.allow_confirm_argument:
            return True
        if not _modern(ctx):
            if not can_elicit(ctx):
                raise confirmation_required(quote, settings, _cannot_ask(confirm))
            answer = await ctx.elicit(quote.message(), CostConfirmation)
            return answer.action == "accept" and answer.data.proceed
        response = (ctx.input_responses or {}).get(QUESTION)
        if isinstance(response, ElicitResult) and ctx.request_state == quote.digest():
            content = response.content or {}
            return response.action == "accept" and content.get("proceed", True) is True
        if not can_elicit(ctx):
            raise confirmation_required(quote, settings, _cannot_ask(confirm))
        question = ElicitRequest(
            params=ElicitRequestFormParams(
                message=quote.message(),
                requested_schema=render_elicitation_schema(CostConfirmation),
            )
        )
        raise InputNeeded(
            InputRequiredResult(input_requests={QUESTION: question}, request_state=quote.digest())
        )

    return approve


def _cannot_ask(confirm: bool | None) -> str:
    said = " (confirm: true is not allowed here)" if confirm else ""
    return f"this client cannot ask the person (it declares no elicitation){said}"
