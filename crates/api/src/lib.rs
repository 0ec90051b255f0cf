//! Wire types of the certctl REST API: requests, responses, enums and validated scalars.
//!
//! These types are the single contract shared by the server, the client, the CLI, the agent and
//! the MCP tools, and the source of the generated OpenAPI document. Request types reject unknown
//! fields and carry validated scalars, so a value that deserializes is already valid.

pub mod common;
pub mod resources;
pub mod scalars;

pub use common::*;
pub use resources::*;
pub use scalars::*;
