//! The committed OpenAPI document is the one the code generates.

use std::path::PathBuf;

#[test]
fn committed_openapi_json_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi.json");
    let regenerate =
        "regenerate it from the repository root with: cargo run -p certctl-server -- openapi > openapi.json";
    let committed = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!("{} cannot be read ({e}); {regenerate}", path.display()),
    };
    let generated = certctl_server::api::openapi().to_pretty_json().unwrap();
    if committed.trim_end() != generated.trim_end() {
        let line = committed.lines().zip(generated.lines()).position(|(a, b)| a != b).map_or_else(
            || {
                format!(
                    "the documents differ in length ({} vs {} lines)",
                    committed.lines().count(),
                    generated.lines().count()
                )
            },
            |i| format!("first difference at line {}", i + 1),
        );
        panic!("openapi.json is out of date with the code ({line}); {regenerate}");
    }
}
