//! `certctl import FILE|DIR`: existing PEM certificates become managed certificates through the
//! create operation, named after their subject.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgMatches, Command};
use serde_json::{Value, json};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use certctl_client::Client;
use certctl_client::operations;

use crate::Failure;

/// The renewal policy the server creates on first start.
const DEFAULT_RENEWAL_POLICY: &str = "rp-default";

pub fn command() -> Command {
    Command::new("import")
        .about("Import PEM certificates (a file, or every .pem/.crt/.cer file of a directory) as managed certificates")
        .arg(Arg::new("path").required(true).value_name("FILE|DIR"))
        .arg(
            Arg::new("owner-id")
                .long("owner-id")
                .alias("owner")
                .required(true)
                .help("Owner of the imported certificates"),
        )
        .arg(Arg::new("team-id").long("team-id").alias("team").required(true).help("Team of the imported certificates"))
        .arg(Arg::new("issuer-id").long("issuer-id").alias("issuer").required(true).help("Issuer that renews them"))
        .arg(
            Arg::new("renewal-policy-id")
                .long("renewal-policy-id")
                .default_value(DEFAULT_RENEWAL_POLICY)
                .help("Renewal policy"),
        )
        .arg(Arg::new("environment").long("environment").default_value("imported"))
        .arg(
            Arg::new("name-template")
                .long("name-template")
                .default_value("{cn}")
                .help("Name of each certificate; {cn} is its common name"),
        )
}

/// What one certificate of a file yields.
struct Found {
    file: PathBuf,
    common_name: String,
    sans: Vec<String>,
}

/// Imports every leaf certificate found; returns the created certificates and the failures.
pub async fn run(client: &Client, m: &ArgMatches) -> Result<Value, Failure> {
    let root = PathBuf::from(m.get_one::<String>("path").expect("required"));
    let files = files(&root).map_err(|e| Failure::Usage(format!("{}: {e}", root.display())))?;
    let mut found = Vec::new();
    for file in &files {
        let data = std::fs::read(file).map_err(|e| Failure::Usage(format!("{}: {e}", file.display())))?;
        found.extend(certificates(file, &data).map_err(|e| Failure::Usage(format!("{}: {e}", file.display())))?);
    }
    if found.is_empty() {
        return Err(Failure::Usage(format!("{}: no PEM certificates found", root.display())));
    }
    let create = operations::find("certs", "create").expect("the API has a create operation for certificates");
    let arg = |k: &str| m.get_one::<String>(k).cloned().unwrap_or_default();
    let (mut created, mut failed) = (Vec::new(), Vec::new());
    for f in found {
        let mut body = json!({
            "name": arg("name-template").replace("{cn}", &f.common_name),
            "common_name": f.common_name,
            "owner_id": arg("owner-id"),
            "team_id": arg("team-id"),
            "issuer_id": arg("issuer-id"),
            "renewal_policy_id": arg("renewal-policy-id"),
            "environment": arg("environment"),
        });
        if !f.sans.is_empty() {
            body["sans"] = json!(f.sans);
        }
        match client.execute(create, &[], &[], Some(&body)).await {
            Ok(cert) => created.push(json!({"file": f.file.display().to_string(), "id": cert["id"], "common_name": cert["common_name"]})),
            Err(e) => failed.push(json!({"file": f.file.display().to_string(), "common_name": body["common_name"], "error": e.to_string()})),
        }
    }
    if created.is_empty() {
        return Err(Failure::Import(json!({"created": created, "failed": failed})));
    }
    let result = json!({"created": created, "failed": failed});
    if failed.is_empty() { Ok(result) } else { Err(Failure::Import(result)) }
}

fn files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    if root.is_file() {
        return Ok(vec![root.to_owned()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if path.is_file() && matches!(ext, "pem" | "crt" | "cer") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The leaf certificates of a PEM file; CA certificates of a chain are skipped.
fn certificates(file: &Path, data: &[u8]) -> Result<Vec<Found>, String> {
    let mut out = Vec::new();
    for pem in Pem::iter_from_buffer(data) {
        let pem = pem.map_err(|e| format!("not PEM: {e}"))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        let cert = pem.parse_x509().map_err(|e| format!("not an X.509 certificate: {e}"))?;
        if cert.is_ca() {
            continue;
        }
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(d) => sans.push((*d).to_owned()),
                    GeneralName::RFC822Name(e) => sans.push((*e).to_owned()),
                    GeneralName::URI(u) => sans.push((*u).to_owned()),
                    GeneralName::IPAddress(b) => {
                        if let Ok(a) = <[u8; 4]>::try_from(*b) {
                            sans.push(IpAddr::from(a).to_string());
                        } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                            sans.push(IpAddr::from(a).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let cn = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
        let Some(common_name) = cn.or_else(|| sans.first().cloned()) else {
            return Err("a certificate has neither a common name nor a SAN".into());
        };
        out.push(Found { file: file.to_owned(), common_name, sans });
    }
    Ok(out)
}
