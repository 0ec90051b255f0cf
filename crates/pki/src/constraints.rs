//! Subject alternative names and RFC 5280 §4.2.1.10 name constraints: parsing names, checking a
//! certificate's names against a CA's constraints, and checking that a subordinate CA's
//! constraints stay inside its parent's.

use std::fmt;
use std::net::IpAddr;

use crate::PkiError;

/// The name constraints of one CA certificate. Lists of a type that are empty do not restrict
/// that type. DNS entries are `example.com` (the domain and every subdomain) or `.example.com`
/// (subdomains only); email entries are a mailbox, a host, or `.domain` (any host below it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameConstraintSet {
    pub permitted_dns: Vec<String>,
    pub excluded_dns: Vec<String>,
    pub permitted_ip: Vec<(IpAddr, u8)>,
    pub excluded_ip: Vec<(IpAddr, u8)>,
    pub permitted_email: Vec<String>,
    pub excluded_email: Vec<String>,
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum San {
    /// A DNS name, lower case; the leftmost label may be `*`.
    Dns(String),
    Ip(IpAddr),
    /// An email address; the domain part is lower case.
    Email(String),
    Uri(String),
}

impl NameConstraintSet {
    pub fn is_empty(&self) -> bool {
        self.permitted_dns.is_empty()
            && self.excluded_dns.is_empty()
            && self.permitted_ip.is_empty()
            && self.excluded_ip.is_empty()
            && self.permitted_email.is_empty()
            && self.excluded_email.is_empty()
    }

    /// Checks that every entry is well formed and returns the set with DNS names and email
    /// domains in lower case. IP entries must have no host bits set.
    pub fn normalized(&self) -> Result<Self, PkiError> {
        let dns = |list: &[String]| -> Result<Vec<String>, PkiError> {
            list.iter()
                .map(|d| {
                    let lower = d.to_ascii_lowercase();
                    let base = lower.strip_prefix('.').unwrap_or(&lower);
                    validate_dns(base, false)
                        .map(|()| lower.clone())
                        .map_err(|why| PkiError::InvalidParameter(format!("DNS name constraint {d:?}: {why}")))
                })
                .collect()
        };
        let email = |list: &[String]| -> Result<Vec<String>, PkiError> {
            list.iter()
                .map(|e| {
                    let normalized = match e.rsplit_once('@') {
                        Some((local, domain)) => validate_email(local, domain).map(|d| format!("{local}@{d}")),
                        None => {
                            let lower = e.to_ascii_lowercase();
                            validate_dns(lower.strip_prefix('.').unwrap_or(&lower), false).map(|()| lower.clone())
                        }
                    };
                    normalized.map_err(|why| PkiError::InvalidParameter(format!("email name constraint {e:?}: {why}")))
                })
                .collect()
        };
        let ip = |list: &[(IpAddr, u8)]| -> Result<Vec<(IpAddr, u8)>, PkiError> {
            list.iter()
                .map(|&(addr, prefix)| {
                    let max = if addr.is_ipv4() { 32 } else { 128 };
                    if prefix > max {
                        return Err(PkiError::InvalidParameter(format!(
                            "IP name constraint {addr}/{prefix}: prefix longer than {max}"
                        )));
                    }
                    let network = mask(addr, prefix);
                    if network != addr {
                        return Err(PkiError::InvalidParameter(format!(
                            "IP name constraint {addr}/{prefix} has host bits set; use {network}/{prefix}"
                        )));
                    }
                    Ok((addr, prefix))
                })
                .collect()
        };
        Ok(Self {
            permitted_dns: dns(&self.permitted_dns)?,
            excluded_dns: dns(&self.excluded_dns)?,
            permitted_ip: ip(&self.permitted_ip)?,
            excluded_ip: ip(&self.excluded_ip)?,
            permitted_email: email(&self.permitted_email)?,
            excluded_email: email(&self.excluded_email)?,
        })
    }
}

impl San {
    /// Parses a name: an IP literal is an IP address, anything with `://` a URI, anything with
    /// `@` an email address, and everything else a DNS name (lower-cased, `*.` allowed leftmost).
    pub fn parse(s: &str) -> Result<Self, PkiError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(PkiError::InvalidParameter("empty subject alternative name".into()));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let invalid = |kind: &str, why: String| PkiError::InvalidParameter(format!("invalid {kind} {s:?}: {why}"));
        if s.contains("://") {
            return validate_uri(s).map(|()| Self::Uri(s.to_owned())).map_err(|why| invalid("URI", why));
        }
        if let Some((local, domain)) = s.rsplit_once('@') {
            return validate_email(local, domain)
                .map(|d| Self::Email(format!("{local}@{d}")))
                .map_err(|why| invalid("email address", why));
        }
        let lower = s.to_ascii_lowercase();
        validate_dns(&lower, true).map(|()| Self::Dns(lower)).map_err(|why| invalid("DNS name", why))
    }

    /// The name as a DNS name, if it is one.
    pub fn as_dns(&self) -> Option<&str> {
        match self {
            Self::Dns(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(s) | Self::Email(s) | Self::Uri(s) => f.write_str(s),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Checks `names` against one CA's constraints. URIs are not constrained: certctl does not
/// model URI subtrees.
pub fn check_names(constraints: &NameConstraintSet, names: &[San]) -> Result<(), PkiError> {
    let c = constraints;
    for name in names {
        match name {
            San::Dns(d) => {
                if let Some(ex) = c.excluded_dns.iter().find(|ex| dns_may_match(d, ex)) {
                    return Err(excluded(name, "DNS", ex));
                }
                if !c.permitted_dns.is_empty() && !c.permitted_dns.iter().any(|p| dns_always_matches(d, p)) {
                    return Err(outside(name, "DNS names", &c.permitted_dns.join(", ")));
                }
            }
            San::Ip(ip) => {
                if let Some(&(net, prefix)) = c.excluded_ip.iter().find(|&&(net, prefix)| ip_in(*ip, net, prefix)) {
                    return Err(excluded(name, "IP", &format!("{net}/{prefix}")));
                }
                if !c.permitted_ip.is_empty() && !c.permitted_ip.iter().any(|&(net, prefix)| ip_in(*ip, net, prefix)) {
                    let list: Vec<String> = c.permitted_ip.iter().map(|(n, p)| format!("{n}/{p}")).collect();
                    return Err(outside(name, "IP ranges", &list.join(", ")));
                }
            }
            San::Email(e) => {
                if let Some(ex) = c.excluded_email.iter().find(|ex| email_matches(e, ex)) {
                    return Err(excluded(name, "email", ex));
                }
                if !c.permitted_email.is_empty() && !c.permitted_email.iter().any(|p| email_matches(e, p)) {
                    return Err(outside(name, "email names", &c.permitted_email.join(", ")));
                }
            }
            San::Uri(_) => {}
        }
    }
    Ok(())
}

/// Checks that a subordinate CA's constraints do not widen its parent's: where the parent permits
/// only some names of a type, the child must declare permitted subtrees of that type, each inside
/// one of the parent's; and no child permitted subtree may lie inside a parent exclusion.
pub fn check_subset(child: &NameConstraintSet, parent: &NameConstraintSet) -> Result<(), PkiError> {
    let text = |s: &String| s.clone();
    let dns_within = |c: &String, p: &String| dns_subtree_within(c, p);
    let dns = [&child.permitted_dns, &parent.permitted_dns, &parent.excluded_dns];
    check_subtrees("DNS", dns, dns_within, text)?;
    let ip_within = |&(cn, cp): &(IpAddr, u8), &(pn, pp): &(IpAddr, u8)| cp >= pp && ip_in(cn, pn, pp);
    let cidr = |&(net, prefix): &(IpAddr, u8)| format!("{net}/{prefix}");
    check_subtrees("IP", [&child.permitted_ip, &parent.permitted_ip, &parent.excluded_ip], ip_within, cidr)?;
    let email_within = |c: &String, p: &String| email_subtree_within(c, p);
    let email = [&child.permitted_email, &parent.permitted_email, &parent.excluded_email];
    check_subtrees("email", email, email_within, text)
}

/// The subset check for one name type; `lists` is [child permitted, parent permitted, parent
/// excluded].
fn check_subtrees<T>(
    kind: &str,
    lists: [&Vec<T>; 3],
    within: impl Fn(&T, &T) -> bool,
    show: impl Fn(&T) -> String,
) -> Result<(), PkiError> {
    let [child_permitted, parent_permitted, parent_excluded] = lists;
    let list = || parent_permitted.iter().map(&show).collect::<Vec<_>>().join(", ");
    if !parent_permitted.is_empty() && child_permitted.is_empty() {
        return Err(PkiError::Constraint(format!(
            "the parent CA permits only the {kind} subtrees {}; the subordinate CA must declare permitted {kind} \
             subtrees inside them",
            list()
        )));
    }
    for c in child_permitted {
        if !parent_permitted.is_empty() && !parent_permitted.iter().any(|p| within(c, p)) {
            return Err(PkiError::Constraint(format!(
                "{kind} subtree {} is outside the parent CA's permitted subtrees ({})",
                show(c),
                list()
            )));
        }
        if let Some(ex) = parent_excluded.iter().find(|ex| within(c, ex)) {
            return Err(PkiError::Constraint(format!(
                "{kind} subtree {} is excluded by the parent CA's excluded subtree {}",
                show(c),
                show(ex)
            )));
        }
    }
    Ok(())
}

fn excluded(name: &San, kind: &str, constraint: &str) -> PkiError {
    PkiError::Constraint(format!("{name} is excluded by the {kind} name constraint {constraint}"))
}

fn outside(name: &San, kind: &str, list: &str) -> PkiError {
    PkiError::Constraint(format!("{name} is outside the permitted {kind} ({list})"))
}

/// Whether `name` is strictly below `domain` (`a.example.com` below `example.com`).
fn is_below(name: &str, domain: &str) -> bool {
    name.len() > domain.len() + 1
        && name.as_bytes()[name.len() - domain.len() - 1] == b'.'
        && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain)
}

fn at_or_below(name: &str, domain: &str) -> bool {
    name.eq_ignore_ascii_case(domain) || is_below(name, domain)
}

/// Splits a DNS constraint into (subdomains only?, base).
fn dns_constraint(c: &str) -> (bool, &str) {
    match c.strip_prefix('.') {
        Some(base) => (true, base),
        None => (false, c),
    }
}

/// Whether a concrete DNS name matches a constraint (OpenSSL semantics: `.d` means below `d`).
fn dns_matches(name: &str, constraint: &str) -> bool {
    match dns_constraint(constraint) {
        (_, "") => true,
        (true, base) => is_below(name, base),
        (false, base) => at_or_below(name, base),
    }
}

/// Whether every name `name` can stand for matches the constraint. A wildcard `*.d` stands for
/// every single-label name directly below `d`.
fn dns_always_matches(name: &str, constraint: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(base) => dns_constraint(constraint).1.is_empty() || at_or_below(base, dns_constraint(constraint).1),
        None => dns_matches(name, constraint),
    }
}

/// Whether some name `name` can stand for matches the constraint. A wildcard that could cover an
/// excluded name is refused, even though validators compare it literally.
fn dns_may_match(name: &str, constraint: &str) -> bool {
    let Some(base) = name.strip_prefix("*.") else {
        return dns_matches(name, constraint);
    };
    match dns_constraint(constraint) {
        (_, "") => true,
        (true, c) => at_or_below(base, c),
        (false, c) => at_or_below(base, c) || c.split_once('.').is_some_and(|(_, parent)| parent == base),
    }
}

/// Whether every name the child DNS subtree covers is covered by the parent subtree.
fn dns_subtree_within(child: &str, parent: &str) -> bool {
    let (child_below_only, cb) = dns_constraint(child);
    match dns_constraint(parent) {
        (_, "") => true,
        _ if cb.is_empty() => false,
        (false, pb) => at_or_below(cb, pb),
        (true, pb) if child_below_only => at_or_below(cb, pb),
        (true, pb) => is_below(cb, pb),
    }
}

/// Whether an email address matches a constraint: a whole mailbox (local part compared exactly),
/// a host, or `.domain` for any host below the domain.
fn email_matches(address: &str, constraint: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    match constraint.rsplit_once('@') {
        Some((c_local, c_domain)) => local == c_local && domain.eq_ignore_ascii_case(c_domain),
        None => match constraint.strip_prefix('.') {
            Some(base) => is_below(domain, base),
            None => domain.eq_ignore_ascii_case(constraint),
        },
    }
}

/// Whether every address the child email subtree covers is covered by the parent subtree.
fn email_subtree_within(child: &str, parent: &str) -> bool {
    if child.contains('@') {
        return email_matches(child, parent);
    }
    if parent.contains('@') {
        return false;
    }
    match (child.strip_prefix('.'), parent.strip_prefix('.')) {
        (None, None) => child.eq_ignore_ascii_case(parent),
        (None, Some(pb)) => is_below(child, pb),
        (Some(_), None) => false,
        (Some(cb), Some(pb)) => at_or_below(cb, pb),
    }
}

/// Clears the host bits of `addr` beyond `prefix`.
pub(crate) fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
            IpAddr::from((bits & m).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            IpAddr::from((bits & m).to_be_bytes())
        }
    }
}

/// Whether `ip` lies inside `net/prefix`. Addresses of the other family never do.
fn ip_in(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    ip.is_ipv4() == net.is_ipv4() && mask(ip, prefix) == mask(net, prefix)
}

/// Checks a DNS name in preferred name syntax: letters, digits and hyphens, labels of 1–63
/// characters not starting or ending with a hyphen, at most 253 characters, and a last label
/// that is not all digits (which would read as an IP address).
pub(crate) fn validate_dns(name: &str, allow_wildcard: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    let rest = match name.strip_prefix("*.") {
        Some(rest) if allow_wildcard => rest,
        Some(_) => return Err("wildcards are not allowed here".into()),
        None => name,
    };
    let labels: Vec<&str> = rest.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters".into());
        }
        if *label == "*" {
            return Err("a wildcard is allowed only as the whole leftmost label".into());
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("label {label:?} has characters other than letters, digits and '-'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with '-'"));
        }
    }
    if labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err("the last label is all digits".into());
    }
    Ok(())
}

/// Checks an email address and returns its domain in lower case.
fn validate_email(local: &str, domain: &str) -> Result<String, String> {
    if local.is_empty() {
        return Err("empty local part".into());
    }
    if !local.bytes().all(|b| b.is_ascii_graphic() && b != b'@') {
        return Err("the local part has spaces, '@' or non-ASCII characters".into());
    }
    let domain = domain.to_ascii_lowercase();
    validate_dns(&domain, false)?;
    Ok(domain)
}

fn validate_uri(uri: &str) -> Result<(), String> {
    let (scheme, rest) = uri.split_once("://").ok_or("missing \"://\"")?;
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(format!("invalid scheme {scheme:?}"));
    }
    if rest.is_empty() {
        return Err("nothing after the scheme".into());
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("spaces or non-ASCII characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(permitted: &[&str], excluded: &[&str]) -> NameConstraintSet {
        NameConstraintSet {
            permitted_dns: permitted.iter().map(|s| s.to_string()).collect(),
            excluded_dns: excluded.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn ok(c: &NameConstraintSet, name: &str) -> bool {
        match check_names(c, &[San::parse(name).unwrap()]) {
            Ok(()) => true,
            Err(PkiError::Constraint(_)) => false,
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn parses_each_kind_of_name() {
        assert_eq!(San::parse("WWW.Example.COM").unwrap(), San::Dns("www.example.com".into()));
        assert_eq!(San::parse("*.example.com").unwrap(), San::Dns("*.example.com".into()));
        assert_eq!(San::parse("10.0.0.1").unwrap(), San::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(San::parse("::1").unwrap(), San::Ip("::1".parse().unwrap()));
        assert_eq!(San::parse("Ops@Example.COM").unwrap(), San::Email("Ops@example.com".into()));
        assert_eq!(San::parse("spiffe://example.org/ns/a").unwrap(), San::Uri("spiffe://example.org/ns/a".into()));
        assert_eq!(San::parse("localhost").unwrap().to_string(), "localhost");
        for bad in ["", "  ", "a..b", "-a.com", "a-.com", "exa mple.com", "a_b.com", "www.*.com", "*", "1.2.3", "é.com"]
        {
            assert!(matches!(San::parse(bad), Err(PkiError::InvalidParameter(_))), "{bad:?} accepted");
        }
        assert!(San::parse(&"a".repeat(64)).is_err());
        assert!(San::parse("@example.com").is_err());
        assert!(San::parse("1http://x").is_err());
        assert!(San::parse("https://").is_err());
    }

    #[test]
    fn dns_constraints_follow_rfc5280() {
        let c = dns(&["example.com"], &["bad.example.com"]);
        let table = [
            ("example.com", true),
            ("www.example.com", true),
            ("a.b.example.com", true),
            ("EXAMPLE.com", true),
            ("evil.com", false),
            ("notexample.com", false),
            ("example.com.evil.org", false),
            ("bad.example.com", false),
            ("x.bad.example.com", false),
            ("notbad.example.com", true),
            ("*.example.com", false), // could stand for bad.example.com
            ("*.bad.example.com", false),
            ("*.other.example.com", true),
        ];
        for (name, want) in table {
            assert_eq!(ok(&c, name), want, "{name}");
        }
        // A leading dot permits subdomains only.
        let sub = dns(&[".example.com"], &[]);
        assert!(!ok(&sub, "example.com"));
        assert!(ok(&sub, "www.example.com"));
        assert!(ok(&sub, "*.example.com"));
        // A wildcard is permitted only when every name it stands for is.
        let narrow = dns(&["www.example.com"], &[]);
        assert!(!ok(&narrow, "*.example.com"));
        assert!(ok(&narrow, "www.example.com"));
        // An excluded leading-dot subtree leaves the domain itself alone.
        let ex = dns(&[], &[".internal.example"]);
        assert!(ok(&ex, "internal.example"));
        assert!(!ok(&ex, "db.internal.example"));
        assert!(!ok(&ex, "*.internal.example"));
        // An empty constraint set restricts nothing.
        assert!(ok(&NameConstraintSet::default(), "anything.test"));
    }

    #[test]
    fn permitted_lists_only_restrict_their_own_type() {
        let c = dns(&["example.com"], &[]);
        assert!(ok(&c, "10.1.2.3"));
        assert!(ok(&c, "root@elsewhere.org"));
        assert!(ok(&c, "https://elsewhere.org/"));
        let err = check_names(&c, &[San::parse("evil.com").unwrap()]).unwrap_err();
        assert!(err.to_string().contains("evil.com is outside"), "{err}");
    }

    #[test]
    fn ip_constraints_use_cidr_containment() {
        let c = NameConstraintSet {
            permitted_ip: vec![("10.0.0.0".parse().unwrap(), 8), ("2001:db8::".parse().unwrap(), 32)],
            excluded_ip: vec![("10.9.0.0".parse().unwrap(), 16)],
            ..Default::default()
        };
        let table = [
            ("10.0.0.1", true),
            ("10.255.255.255", true),
            ("11.0.0.1", false),
            ("10.9.1.1", false),
            ("2001:db8::1", true),
            ("2001:db9::1", false),
            ("::ffff:10.0.0.1", false),
        ];
        for (name, want) in table {
            assert_eq!(ok(&c, name), want, "{name}");
        }
        let err = check_names(&c, &[San::parse("10.9.1.1").unwrap()]).unwrap_err();
        assert!(err.to_string().contains("excluded by the IP name constraint 10.9.0.0/16"), "{err}");
        assert!(ok(&c, "host.example.com"));
    }

    #[test]
    fn email_constraints_match_mailbox_host_or_domain() {
        let c = NameConstraintSet {
            permitted_email: vec!["alice@corp.example".into(), "mail.example".into(), ".staff.example".into()],
            excluded_email: vec!["bob@x.staff.example".into()],
            ..Default::default()
        };
        let table = [
            ("alice@corp.example", true),
            ("alice@CORP.example", true),
            ("Alice@corp.example", false),
            ("carol@corp.example", false),
            ("anyone@mail.example", true),
            ("anyone@sub.mail.example", false),
            ("anyone@x.staff.example", true),
            ("anyone@staff.example", false),
            ("bob@x.staff.example", false),
        ];
        for (name, want) in table {
            assert_eq!(ok(&c, name), want, "{name}");
        }
    }

    #[test]
    fn subset_requires_child_inside_parent() {
        let parent = dns(&["example.com"], &["bad.example.com"]);
        assert!(check_subset(&dns(&["example.com"], &[]), &parent).is_ok());
        assert!(check_subset(&dns(&["eng.example.com", ".ops.example.com"], &[]), &parent).is_ok());
        let wider = check_subset(&dns(&["example.org"], &[]), &parent).unwrap_err();
        assert!(matches!(&wider, PkiError::Constraint(m) if m.contains("example.org is outside")), "{wider}");
        // Omitting the type would permit everything of it.
        assert!(matches!(check_subset(&NameConstraintSet::default(), &parent), Err(PkiError::Constraint(_))));
        // A child cannot re-permit what the parent excludes.
        let unexclude = check_subset(&dns(&["x.bad.example.com"], &[]), &parent).unwrap_err();
        assert!(unexclude.to_string().contains("excluded"), "{unexclude}");
        // Subdomains-only parent: the child may not include the domain itself.
        let dot_parent = dns(&[".example.com"], &[]);
        assert!(check_subset(&dns(&["example.com"], &[]), &dot_parent).is_err());
        assert!(check_subset(&dns(&[".example.com"], &[]), &dot_parent).is_ok());
        assert!(check_subset(&dns(&["a.example.com"], &[]), &dot_parent).is_ok());
        // A parent without DNS constraints leaves the child free.
        assert!(check_subset(&dns(&["anything.test"], &[]), &NameConstraintSet::default()).is_ok());
    }

    #[test]
    fn subset_checks_ip_and_email() {
        let parent = NameConstraintSet {
            permitted_ip: vec![("10.0.0.0".parse().unwrap(), 8)],
            excluded_ip: vec![("10.9.0.0".parse().unwrap(), 16)],
            permitted_email: vec![".example.com".into()],
            ..Default::default()
        };
        let child = |ip: (&str, u8), email: &str| NameConstraintSet {
            permitted_ip: vec![(ip.0.parse().unwrap(), ip.1)],
            permitted_email: vec![email.into()],
            ..Default::default()
        };
        assert!(check_subset(&child(("10.1.0.0", 16), "a.example.com"), &parent).is_ok());
        assert!(check_subset(&child(("10.1.0.0", 16), ".a.example.com"), &parent).is_ok());
        assert!(check_subset(&child(("10.1.0.0", 16), "x@a.example.com"), &parent).is_ok());
        assert!(check_subset(&child(("0.0.0.0", 0), "a.example.com"), &parent).is_err());
        assert!(check_subset(&child(("10.9.1.0", 24), "a.example.com"), &parent).is_err());
        assert!(check_subset(&child(("10.1.0.0", 16), "example.com"), &parent).is_err());
        assert!(check_subset(&child(("10.1.0.0", 16), "x@example.org"), &parent).is_err());
    }

    #[test]
    fn normalizes_and_validates_constraint_entries() {
        let set = NameConstraintSet {
            permitted_dns: vec![".Example.COM".into()],
            permitted_email: vec!["Bob@Example.COM".into()],
            permitted_ip: vec![("192.168.0.0".parse().unwrap(), 16)],
            ..Default::default()
        };
        let n = set.normalized().unwrap();
        assert_eq!(n.permitted_dns, vec![".example.com"]);
        assert_eq!(n.permitted_email, vec!["Bob@example.com"]);
        let host_bits =
            NameConstraintSet { permitted_ip: vec![("192.168.1.1".parse().unwrap(), 16)], ..Default::default() };
        assert!(host_bits.normalized().unwrap_err().to_string().contains("192.168.0.0/16"));
        let long = NameConstraintSet { excluded_ip: vec![("10.0.0.0".parse().unwrap(), 33)], ..Default::default() };
        assert!(long.normalized().is_err());
        assert!(dns(&["*.example.com"], &[]).normalized().is_err());
        assert!(dns(&[], &["bad name"]).normalized().is_err());
    }
}
