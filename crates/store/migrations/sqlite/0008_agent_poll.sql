-- A work poll looks for certificates waiting for a CSR through the agent's own targets.
CREATE INDEX targets_agent_idx ON deployment_targets (agent_id);
