"""The delegation toolset: durable tasks other agents claim and complete (agent_delegate, agent_escalate, task_*)."""
