"""Hosted mode: one HTTP server for many people, each with their own Poe key, each isolated.

`POE_MCP_AUTH=tokens` (a tokens file) or `oauth` (the MCP authorization flow, Poe as the identity):
every request resolves to a User (users.py), whose Poe key is kept encrypted (keys.py) and whose
conversations, media, usage and jobs are theirs alone (tenancy.py)."""
