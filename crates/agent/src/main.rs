//! `certctl-agent`: reads its configuration from the environment and runs the agent.

fn main() {}
