//! The server's integration suite: the REST API in process over a throwaway database (SQLite,
//! and PostgreSQL for a smoke run when `CERTCTL_TEST_POSTGRES_URL` is set), the committed
//! OpenAPI document, and the real binary across a restart.

#[path = "api/access.rs"]
mod access;
#[path = "api/acme.rs"]
mod acme;
#[path = "api/acme_client.rs"]
mod acme_client;
#[path = "api/acme_issuer.rs"]
mod acme_issuer;
#[path = "api/acme_peers.rs"]
mod acme_peers;
#[path = "api/acme_peers_challenges.rs"]
mod acme_peers_challenges;
#[path = "api/acme_policy.rs"]
mod acme_policy;
#[path = "api/agent_protocol.rs"]
mod agent_protocol;
#[path = "api/agents.rs"]
mod agents;
#[path = "api/audit.rs"]
mod audit;
#[path = "api/backends.rs"]
mod backends;
#[path = "api/bootstrap.rs"]
mod bootstrap;
#[path = "api/certificate_list.rs"]
mod certificate_list;
#[path = "api/certificates.rs"]
mod certificates;
#[path = "api/digest.rs"]
mod digest;
#[path = "api/email.rs"]
mod email;
#[path = "api/email_peer.rs"]
mod email_peer;
#[path = "api/errors.rs"]
mod errors;
#[path = "api/fixtures.rs"]
mod fixtures;
#[path = "api/harness.rs"]
mod harness;
#[path = "api/hierarchy.rs"]
mod hierarchy;
#[path = "api/issuance.rs"]
mod issuance;
#[path = "api/issuers.rs"]
mod issuers;
#[path = "api/jobs.rs"]
mod jobs;
#[path = "api/lifecycle_audit.rs"]
mod lifecycle_audit;
#[path = "api/live.rs"]
mod live;
#[path = "api/meta.rs"]
mod meta;
#[path = "api/metrics.rs"]
mod metrics;
#[path = "api/notifications.rs"]
mod notifications;
#[path = "api/notifications_peer.rs"]
mod notifications_peer;
#[path = "api/openapi.rs"]
mod openapi;
#[path = "api/organization.rs"]
mod organization;
#[path = "api/pki_peer.rs"]
mod pki_peer;
#[path = "api/process.rs"]
mod process;
#[path = "api/profiles.rs"]
mod profiles;
#[path = "api/resource_roles.rs"]
mod resource_roles;
#[path = "api/revocation.rs"]
mod revocation;
#[path = "api/stats.rs"]
mod stats;
#[path = "api/targets.rs"]
mod targets;
#[path = "api/web.rs"]
mod web;
#[path = "api/web_browser.rs"]
mod web_browser;
#[path = "api/web_details.rs"]
mod web_details;
#[path = "api/web_edit.rs"]
mod web_edit;
#[path = "api/web_forms.rs"]
mod web_forms;
#[path = "api/web_rest.rs"]
mod web_rest;
