"""Drives certctl-mcp over stdio with the Python MCP SDK (PyPI `mcp`), against a running server.

Usage: mcp_client.py CERTCTL_MCP_BINARY EXPECTED_TOOL_COUNT DEAD_NOTIFICATION_ID
The server URL, API key and CA bundle come from the environment (CERTCTL_*).
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

FENCE_OPEN = "<untrusted-server-data"


def text_of(result):
    dumped = result.model_dump(by_alias=True)
    return dumped.get("isError", False), "".join(c.get("text", "") for c in dumped["content"])


def payload(text):
    """The JSON between the untrusted-data fence tags."""
    assert FENCE_OPEN in text, text
    body = text.split(">", 1)[1] if text.startswith(FENCE_OPEN) else text.split(FENCE_OPEN, 1)[1].split(">", 1)[1]
    return json.loads(body.rsplit("</untrusted-server-data>", 1)[0])


async def main(binary, expected, dead_id):
    env = {k: v for k, v in os.environ.items() if k.startswith("CERTCTL_")}
    params = StdioServerParameters(command=binary, args=[], env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.model_dump(by_alias=True)["serverInfo"]["name"] == "certctl", init

            tools = (await session.list_tools()).tools
            names = {t.name for t in tools}
            assert len(tools) == expected, f"{len(tools)} tools, expected {expected}"
            for name in ["certctl_certs_list", "certctl_certs_get", "certctl_teams_create",
                         "certctl_notifications_list", "certctl_notifications_requeue"]:
                assert name in names, f"{name} missing from {sorted(names)}"
            by_name = {t.name: t.model_dump(by_alias=True, exclude_none=True) for t in tools}
            for t in by_name.values():
                assert t.get("description"), t["name"]
                assert "annotations" in t, t["name"]
            assert by_name["certctl_certs_list"]["annotations"]["readOnlyHint"] is True
            assert by_name["certctl_certs_archive"]["annotations"]["destructiveHint"] is True
            assert by_name["certctl_notifications_requeue"]["annotations"]["readOnlyHint"] is False
            status = by_name["certctl_notifications_list"]["inputSchema"]["properties"]["status"]
            assert "dead" in json.dumps(status), status

            err, text = text_of(await session.call_tool("certctl_teams_create", {"name": "mcp team"}))
            assert not err, text
            team = payload(text)
            err, text = text_of(await session.call_tool("certctl_teams_get", {"id": team["id"]}))
            assert not err and payload(text)["name"] == "mcp team", text

            err, text = text_of(await session.call_tool("certctl_certs_list", {"page_size": 5}))
            assert not err, text
            listing = payload(text)
            assert isinstance(listing["data"], list) and listing["page_size"] == 5, listing

            err, text = text_of(await session.call_tool("certctl_notifications_list", {"status": "dead"}))
            assert not err, text
            assert any(n["id"] == dead_id for n in payload(text)["data"]), text
            err, text = text_of(await session.call_tool("certctl_notifications_requeue", {"id": dead_id}))
            assert not err and payload(text)["status"] == "requeued", text

            # Invalid calls are tool errors that name the argument; the server keeps serving.
            err, text = text_of(await session.call_tool("certctl_certs_get", {}))
            assert err and "'id'" in text, text
            err, text = text_of(await session.call_tool("certctl_certs_list", {"page_size": "many"}))
            assert err and "page_size" in text, text
            err, text = text_of(await session.call_tool("certctl_certs_get", {"id": "mc-nope"}))
            assert err and "not_found" in text and FENCE_OPEN in text, text
            err, text = text_of(await session.call_tool("certctl_certs_list", {}))
            assert not err, text
    print("python mcp client: ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
