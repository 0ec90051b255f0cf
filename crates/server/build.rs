//! Records the git commit the binary is built from, when the source is a git checkout.

fn main() {
    let commit = std::env::var("CERTCTL_GIT_COMMIT").ok().or_else(|| {
        std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
    });
    println!("cargo:rustc-env=CERTCTL_GIT_COMMIT={}", commit.unwrap_or_default());
    println!("cargo:rerun-if-env-changed=CERTCTL_GIT_COMMIT");
    let head = std::path::Path::new("../../.git/HEAD");
    if head.exists() {
        println!("cargo:rerun-if-changed=../../.git/HEAD");
        if let Ok(text) = std::fs::read_to_string(head)
            && let Some(reference) = text.strip_prefix("ref: ")
        {
            println!("cargo:rerun-if-changed=../../.git/{}", reference.trim());
        }
    }
}
