"""Issue 16: agents working together through two real server processes on one data dir, over stdio.

One server delegates and escalates; the other lists, claims and completes; a second claim fails typed; a lapsed lease
returns the task; a high escalation lists first; task://{id} reads a task and completion offers task ids. With
--auto-escalate-to, a failing test escalates once, not again while it fails, and again after it has passed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import error, ok, stdio_session
from mcp_types import PromptReference, ResourceTemplateReference

pytestmark = pytest.mark.e2e
DELEGATION = ("--toolsets", "delegation")


async def test_two_servers_share_one_task_queue(built_shop: Path, data_dir: Path) -> None:
    shop = built_shop  # its manifest resolves related node names
    async with stdio_session(shop, data_dir, *DELEGATION) as lead, \
            stdio_session(shop, data_dir, *DELEGATION, "--agent-name", "data-pipeline-engineer") as other:
        delegated = ok(await lead.call_tool("agent_delegate", {
            "to_agent": "sql-database-specialist", "task": "Optimize SQL for dbt incremental model fct_orders",
            "context": "merge takes 40 s on prod; password=hunter2", "related_nodes": ["fct_orders", "not_yet_a_model"]}))
        task = delegated["task"]
        assert (task["kind"], task["status"], task["priority"], task["from_agent"]) == ("delegation", "open", "normal", "dbt-analytics-engineer")
        assert task["related_nodes"] == ["model.shop.fct_orders", "not_yet_a_model"] and "not_yet_a_model" in delegated["note"]
        assert "hunter2" not in task["details"]  # a secret pasted into a task is masked as in memories
        escalated = ok(await other.call_tool("agent_escalate", {"subject": "raw orders 2 days late", "severity": "high"}))["task"]
        assert escalated["from_agent"] == "data-pipeline-engineer" and escalated["severity"] == "high"

        # the other process sees both; the high escalation first
        listed = ok(await other.call_tool("task_list", {"agent": "sql-database-specialist"}))
        assert [t["id"] for t in listed["tasks"]] == [escalated["id"], task["id"]] and listed["total"] == 2
        page = ok(await other.call_tool("task_list", {"limit": 1}))
        assert [t["id"] for t in page["tasks"]] == [escalated["id"]] and page["next_cursor"] == "1"
        assert [t["id"] for t in ok(await other.call_tool("task_list", {"limit": 1, "cursor": "1"}))["tasks"]] == [task["id"]]

        claimed = ok(await other.call_tool("task_claim", {"id": task["id"], "agent": "sql-database-specialist", "lease_seconds": 2}))
        assert claimed["task"]["status"] == "claimed" and claimed["task"]["claimed_by"] == "sql-database-specialist"
        second = error(await lead.call_tool("task_claim", {"id": task["id"], "agent": "cicd-engineer"}))
        assert second["code"] == "task_claimed" and "sql-database-specialist" in second["message"]
        assert error(await lead.call_tool("task_update", {"id": task["id"], "status": "done"}))["code"] == "task_claimed"

        await asyncio.sleep(2.5)  # the lease lapses: the task is open again, for anyone
        reopened = ok(await lead.call_tool("task_list", {"status": "open"}))
        assert task["id"] in [t["id"] for t in reopened["tasks"]]
        ok(await lead.call_tool("task_claim", {"id": task["id"], "agent": "cicd-engineer", "lease_seconds": 600}))
        late = error(await other.call_tool("task_update", {"id": task["id"], "status": "done", "agent": "sql-database-specialist"}))
        assert late["code"] == "task_claimed"
        done = ok(await lead.call_tool("task_update", {"id": task["id"], "status": "done", "agent": "cicd-engineer",
                                                       "result": "incremental_strategy=merge with a unique_key"}))
        assert done["task"]["status"] == "done"

        seen = ok(await other.call_tool("task_get", {"id": task["id"]}))["task"]
        assert seen["status"] == "done" and seen["result"].startswith("incremental_strategy=merge")
        assert [n.get("status") for n in seen["notes"]] == ["open", "claimed", "claimed", "done"]
        closed = error(await other.call_tool("task_update", {"id": task["id"], "status": "open", "agent": "cicd-engineer"}))
        assert closed["code"] == "task_closed"

        resource = await other.read_resource(f"task://{task['id']}", cache_mode="bypass")
        assert json.loads(resource.contents[0].text)["result"] == seen["result"]
        offered = await other.complete(ResourceTemplateReference(type="ref/resource", uri="task://{id}"), {"name": "id", "value": ""})
        assert offered.completion.values == [str(escalated["id"])]  # open tasks only, most urgent first


async def test_hostile_delegation_calls_are_refused_and_write_nothing(shop: Path, data_dir: Path) -> None:
    async with stdio_session(shop, data_dir, *DELEGATION) as client:
        refused = [
            ("agent_delegate", {"to_agent": "--exec=rm -rf /", "task": "x"}, "to_agent"),
            ("agent_delegate", {"to_agent": "cicd-engineer", "task": "x\x00y"}, "U+0000"),
            ("agent_delegate", {"to_agent": "cicd-engineer", "task": "ok\u202e"}, "U+202E"),
            ("agent_delegate", {"to_agent": "cicd-engineer", "task": "   "}, "task"),
            ("agent_delegate", {"to_agent": "cicd-engineer", "task": "x" * 5000}, "task"),
            ("agent_delegate", {"to_agent": "cicd-engineer", "task": "x", "related_nodes": ["../../etc/passwd"]}, "related_nodes"),
            ("agent_delegate", {"to_agent": "cicd-engineer", "task": "x", "priority": "p0"}, "priority"),
            ("agent_escalate", {"subject": "two\nlines", "severity": "high"}, "U+000A"),
            ("agent_escalate", {"subject": "x", "severity": "high", "run_id": "../../runs/x"}, "run_id"),
            ("task_claim", {"id": 1, "agent": "a b"}, "agent"),
            ("task_claim", {"id": -1, "agent": "cicd-engineer"}, "id"),
            ("task_list", {"cursor": "1; drop table tasks"}, "cursor"),
            ("task_update", {"id": 1, "status": "claimed"}, "status"),
        ]
        for tool, args, named in refused:
            failure = error(await client.call_tool(tool, args))
            assert failure["code"] == "invalid_input" and named in failure["message"], (tool, args, failure)
        assert error(await client.call_tool("task_get", {"id": 1}))["code"] == "task_not_found"
        assert error(await client.call_tool("agent_escalate", {"subject": "x", "severity": "low", "run_id": "latest"}))["code"] == "run_not_found"
        assert ok(await client.call_tool("task_list", {})).get("total", 0) == 0  # nothing was written (0 is a default: left out)
        for uri in ("task://0", "task://1", "task://../x", "task://1%2F..", "task://abc"):
            with pytest.raises(Exception):
                await client.read_resource(uri, cache_mode="bypass")


BAD_ROWS = ("901,777,2024-01-12 08:13:00,lost,2024-01-16 19:13:00\n"
            "902,778,2024-01-12 08:13:00,lost,2024-01-16 19:13:00\n")


async def test_a_failing_test_escalates_once_until_it_passes_again(built_shop: Path, data_dir: Path) -> None:
    seed = built_shop / "seeds/raw_orders.csv"
    clean = seed.read_text()
    seed.write_text(clean + BAD_ROWS)
    select = {"select": ["raw_orders", "stg_orders"]}
    async with stdio_session(built_shop, data_dir, "--toolsets", "dbt,authoring,files,delegation",
                             "--auto-escalate-to", "data-governance-agent") as client:
        # the freshness prompt hands an upstream delay to an agent: its argument completes agent names
        agents = await client.complete(PromptReference(type="ref/prompt", name="recover_source_freshness"),
                                       {"name": "upstream_agent", "value": "data-"})
        assert agents.completion.values == ["data-pipeline-engineer", "data-governance-agent"]
        raw = await client.call_tool("dbt_build", select)
        build = ok(raw)
        failing = {n["name"] for n in build["nodes"] if n["status"] == "fail"}
        assert failing == {"accepted_values_stg_orders_status___var_valid_order_statuses_",
                           "relationships_stg_orders_customer_id__customer_id__ref_stg_customers_"}, failing
        assert len(build["extra"]["escalated"]) == 2 and "escalated: task " in raw.content[0].text
        tasks = ok(await client.call_tool("task_list", {"kind": "escalation", "agent": "data-governance-agent"}))["tasks"]
        assert len(tasks) == 2 and {t["severity"] for t in tasks} == {"high"}
        first = ok(await client.call_tool("task_get", {"id": tasks[0]["id"]}))["task"]
        assert "model.shop.stg_orders" in first["related_nodes"] and first["run"]["run_id"] == build["run_id"]
        assert first["title"].startswith("Test failing: ") and f"dbt://run/{build['run_id']}" in first["details"]

        again = ok(await client.call_tool("dbt_test", {"select": "stg_orders"}))
        assert again["success"] is False and "escalated" not in again.get("extra", {})  # still failing: no new task
        assert ok(await client.call_tool("task_list", {"kind": "escalation"}))["total"] == 2

        seed.write_text(clean)
        assert ok(await client.call_tool("dbt_build", select))["success"]  # passing again clears them
        seed.write_text(clean + BAD_ROWS)
        third = ok(await client.call_tool("dbt_build", select))
        assert len(third["extra"]["escalated"]) == 2
        assert ok(await client.call_tool("task_list", {"kind": "escalation"}))["total"] == 4

        # by hand: an escalation of the latest failed build carries its failing nodes by reference
        manual = ok(await client.call_tool("agent_escalate", {"subject": "stg_orders has orphan customers", "severity": "critical",
                                                              "run_id": "latest"}))["task"]
        assert manual["run"]["run_id"] == third["run_id"] and len(manual["run"]["failing"]) == 2
        assert set(manual["related_nodes"]) == {f["unique_id"] for f in manual["run"]["failing"]}
        assert ok(await client.call_tool("task_list", {}))["tasks"][0]["id"] == manual["id"]  # critical first
