"""`poe-mcp users`: the tokens file of hosted mode, from a terminal. A token is printed once, never again."""

from __future__ import annotations

import argparse
import json
import sys

from ..config import Settings, SettingsError
from ..hosted.keys import new_secret_key
from ..hosted.setup import tokens_file


def users_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "secret-key":
        print(new_secret_key())
        print(
            "poe-mcp: set this as POE_MCP_SECRET_KEY on every replica; users' Poe keys are encrypted "
            "with it (keep it secret, and keep it: without it they must be added again)",
            file=sys.stderr,
        )
        return 0
    if settings.auth == "oauth" and args.action in ("list", "revoke"):
        return oauth_users(settings, args)
    if args.action == "list":
        listing = tokens_file(settings).listing()
        if args.json:
            print(json.dumps(listing, indent=2))
        elif not listing:
            print(f"No users in {settings.tokens_file}; add one with `poe-mcp users add NAME`.")
        for entry in [] if args.json else listing:
            whose = "own Poe key" if entry["own_poe_key"] else "the server's POE_API_KEY"
            print(f"{entry['name']}\t{whose}")
        return 0
    if not args.name:
        raise SettingsError(f"`poe-mcp users {args.action}` needs the user's NAME")
    if args.action == "revoke":
        if not tokens_file(settings).revoke(args.name):
            raise SettingsError(f"no user {args.name!r} in {settings.tokens_file}")
        print(f"Revoked {args.name}: their token no longer works and their Poe key is deleted.")
        return 0
    key: str | None = None
    if args.poe_api_key_stdin:
        key = sys.stdin.readline().strip()
        if not key:
            raise SettingsError("--poe-api-key-stdin: no key arrived on stdin")
    token = tokens_file(settings, need_box=key is not None).add(args.name, key, args.replace)
    if args.json:
        print(json.dumps({"name": args.name, "token": token}))
    else:
        print(token)
        print(
            f"poe-mcp: added {args.name} to {settings.tokens_file}. That is their token, shown only now: "
            f'their client sends "Authorization: Bearer <token>".',
            file=sys.stderr,
        )
    return 0


def oauth_users(settings: Settings, args: argparse.Namespace) -> int:
    """oauth mode: the people signed in with Poe, by id (Poe gives no name); revoke signs one out."""
    import anyio

    from ..hosted.oauth import sign_out, signed_in_users

    if args.action == "list":
        listing = anyio.run(signed_in_users, settings)
        if args.json:
            print(json.dumps(listing, indent=2))
        elif not listing:
            print("Nobody has signed in with Poe yet.")
        for entry in [] if args.json else listing:
            print(entry["name"])
        return 0
    if not args.name:
        raise SettingsError("`poe-mcp users revoke` needs the user's id (see `poe-mcp users list`)")
    if not anyio.run(sign_out, settings, args.name):
        raise SettingsError(f"nobody signed in as {args.name!r}; `poe-mcp users list` shows who is")
    print(f"Signed out {args.name}: their Poe key is deleted and their tokens no longer work.")
    return 0
