//! The `certctl` command tree, built from the operation table: one subcommand per resource, one
//! per operation under it, a positional argument per path parameter, a flag per query parameter
//! and per top-level body property.

use clap::builder::{PossibleValuesParser, ValueParser};
use clap::{Arg, ArgAction, Command};

use certctl_client::operations::{self, Operation, ParamKind};

/// Exit codes, shown in `--help` and the README.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  API error (the server's error code, message and request id are printed)
  2  usage error (unknown flag, bad value, missing CERTCTL_API_KEY)
  3  a job followed with --wait failed or was cancelled

Environment:
  CERTCTL_SERVER_URL         server URL (default https://localhost:8443)
  CERTCTL_API_KEY            API key (required)
  CERTCTL_SERVER_CA_BUNDLE   PEM file of CAs to trust for the server's certificate
  CERTCTL_TIMEOUT            request timeout in seconds (default 30)";

/// Flag names the CLI itself uses; a body property with one of these names gets a `body-` prefix.
const RESERVED: &[&str] = &["output", "limit", "data", "wait", "wait-timeout", "help", "version"];

/// Actions that enqueue a job `--wait` can follow.
pub const WAITABLE: &[&str] = &["renew", "revoke", "deploy", "bulk-renew"];

/// Argument id of a path parameter.
pub fn path_id(name: &str) -> String {
    format!("path:{name}")
}

/// Argument id of a query parameter.
pub fn query_id(name: &str) -> String {
    format!("query:{name}")
}

/// Argument id of a body property.
pub fn body_id(name: &str) -> String {
    format!("body:{name}")
}

/// The whole command tree.
pub fn build() -> Command {
    let mut root = Command::new("certctl")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Command-line client for the certctl certificate lifecycle server")
        .after_help(EXIT_CODES)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(
            Arg::new("output")
                .long("output")
                .short('o')
                .global(true)
                .value_parser(["table", "json", "yaml"])
                .help("Output format (default: table on a terminal, json otherwise)"),
        )
        .subcommand(Command::new("version").about("Print the CLI's version and the server's"))
        .subcommand(Command::new("status").about("Check the server: health, the API key, the server version"))
        .subcommand(
            Command::new("completions")
                .about("Print a shell completion script")
                .arg(Arg::new("shell").required(true).value_parser(clap::value_parser!(clap_complete::Shell))),
        )
        .subcommand(crate::import::command());
    let mut resources: Vec<&str> = operations::all().iter().map(|o| o.resource.as_str()).collect();
    resources.sort_unstable();
    resources.dedup();
    for resource in resources {
        let mut sub = Command::new(resource.to_owned())
            .about(format!("{resource} operations"))
            .subcommand_required(true)
            .arg_required_else_help(true);
        for op in operations::all().iter().filter(|o| o.resource == resource) {
            sub = sub.subcommand(operation(op));
        }
        root = root.subcommand(sub);
    }
    root
}

/// The long flag of a body property.
pub fn body_flag(op: &Operation, name: &str) -> String {
    let flag = name.replace('_', "-");
    let clashes = RESERVED.contains(&flag.as_str()) || op.query_params().any(|p| p.name.replace('_', "-") == flag);
    if clashes { format!("body-{flag}") } else { flag }
}

fn operation(op: &Operation) -> Command {
    let mut cmd = Command::new(op.action.clone())
        .about(op.summary.clone())
        .long_about(format!("{}\n\n{} {}", op.help(), op.method.as_str(), op.path))
        .after_help(EXIT_CODES);
    let mut longs: Vec<String> = Vec::new();
    for p in op.path_params() {
        cmd = cmd.arg(
            Arg::new(path_id(&p.name)).value_name(p.name.to_uppercase()).required(true).help(p.description.clone()),
        );
    }
    for p in op.query_params() {
        let long = p.name.replace('_', "-");
        let mut help = p.description.clone();
        if is_time_filter(&p.name) {
            help.push_str(" Accepts RFC 3339 or a relative age such as 30d, 12h, 2w.");
        }
        let mut arg = Arg::new(query_id(&p.name)).long(long.clone()).value_name(p.name.to_uppercase()).help(help);
        arg = match p.kind {
            ParamKind::Boolean => {
                arg.num_args(0..=1).default_missing_value("true").value_parser(clap::builder::BoolishValueParser::new())
            }
            ParamKind::Integer => arg.value_parser(clap::value_parser!(i64)),
            ParamKind::Number => arg.value_parser(clap::value_parser!(f64)),
            ParamKind::String if !p.values.is_empty() => arg.value_parser(PossibleValuesParser::new(p.values.clone())),
            // Values such as `-notAfter` (descending sort) are values, not flags.
            ParamKind::String => arg.allow_hyphen_values(true),
        };
        longs.push(long);
        cmd = cmd.arg(arg);
    }
    for f in &op.body_fields {
        let long = body_flag(op, &f.name);
        let mut help = if f.description.is_empty() { format!("Body field {}", f.name) } else { f.description.clone() };
        if f.required {
            help.push_str(" (required in the body)");
        }
        longs.push(long.clone());
        cmd = cmd.arg(
            Arg::new(body_id(&f.name))
                .long(long)
                .value_name(f.name.to_uppercase())
                .help(help)
                .value_parser(ValueParser::string())
                .allow_hyphen_values(true),
        );
    }
    // `--owner` for `--owner-id` and the like, where the short name is free.
    for p in op.query_params().filter(|p| p.name.ends_with("_id")) {
        let short = p.name.trim_end_matches("_id").replace('_', "-");
        if !longs.contains(&short) && !RESERVED.contains(&short.as_str()) {
            cmd = cmd.mut_arg(query_id(&p.name), |a| a.visible_alias(short.clone()));
            longs.push(short);
        }
    }
    if op.body.is_some() {
        cmd = cmd.arg(
            Arg::new("data")
                .long("data")
                .short('d')
                .value_name("JSON|@FILE")
                .help("The whole JSON body, inline or from a file; field flags override its properties"),
        );
    }
    if op.paginated() {
        cmd = cmd.arg(
            Arg::new("limit")
                .long("limit")
                .value_parser(clap::value_parser!(u64).range(1..))
                .help("Return up to N rows, following next_cursor across pages"),
        );
    }
    if WAITABLE.contains(&op.action.as_str()) {
        cmd = cmd
            .arg(
                Arg::new("wait")
                    .long("wait")
                    .action(ArgAction::SetTrue)
                    .help("Follow the job to its end; exit 3 if it fails"),
            )
            .arg(
                Arg::new("wait-timeout")
                    .long("wait-timeout")
                    .value_name("DURATION")
                    .default_value("5m")
                    .help("How long --wait waits (e.g. 90s, 5m)"),
            );
    }
    cmd
}

/// Query parameters that filter on a time and so take relative ages.
pub fn is_time_filter(name: &str) -> bool {
    name.ends_with("_before") || name.ends_with("_after") || name == "from" || name == "to"
}
