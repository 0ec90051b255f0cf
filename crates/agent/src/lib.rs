//! certctl-agent: enrolment, the heartbeat and work loop, local keys, deployment and discovery.
