//! Name resolution for challenge validation: TXT records for dns-01 and the addresses http-01
//! and tls-alpn-01 dial, all through `CERTCTL_ACME_DNS_RESOLVER` when it is set (the system
//! resolver otherwise). Every address a name resolves to passes the SSRF guard before any dial
//! (loopback and link-local refused unless `CERTCTL_ALLOW_LOOPBACK_TARGETS`), inside the HTTP
//! client's own resolver, so the address checked is the address dialled.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use super::challenge::Failure;
use crate::notify::guard::refused;

/// How long one DNS query may take before it is retried once.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where validation looks names up, and whether loopback answers may be dialled.
#[derive(Debug, Clone, Copy)]
pub struct ValidationDns {
    pub server: Option<SocketAddr>,
    pub allow_loopback: bool,
}

impl ValidationDns {
    pub fn new(config: &crate::config::Config) -> Self {
        ValidationDns { server: config.acme_dns_resolver, allow_loopback: config.allow_loopback_targets }
    }

    /// A resolver for one validation. It is built afresh each time and caches nothing, so a
    /// record a client has just published is never hidden by an earlier answer.
    fn resolver(&self) -> Result<TokioResolver, Failure> {
        let mut builder = match self.server {
            Some(server) => {
                let connection = |mut c: ConnectionConfig| {
                    c.port = server.port();
                    c
                };
                let ns = NameServerConfig::new(
                    server.ip(),
                    true,
                    vec![connection(ConnectionConfig::udp()), connection(ConnectionConfig::tcp())],
                );
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| Failure::new("serverInternal", format!("system resolver configuration: {e}")))?,
        };
        let options = builder.options_mut();
        options.timeout = QUERY_TIMEOUT;
        options.attempts = 1;
        options.cache_size = 0;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        if self.server.is_some() {
            // The configured server is the whole truth about names, /etc/hosts included.
            options.use_hosts_file = ResolveHosts::Never;
        }
        builder.build().map_err(|e| Failure::new("serverInternal", format!("DNS resolver: {e}")))
    }

    /// The TXT strings at `name` (each record's strings joined, as RFC 8555 §8.4 reads them);
    /// empty when the name or the records do not exist.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, Failure> {
        let lookup = match self.resolver()?.txt_lookup(absolute(name)).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => return Ok(Vec::new()),
            Err(e) => return Err(dns_failure(name, "TXT", &e)),
        };
        let values = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s)).collect::<String>()),
                _ => None,
            })
            .collect();
        Ok(values)
    }

    /// The addresses `host` resolves to, every one allowed by the SSRF guard.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, Failure> {
        let ips: Vec<IpAddr> = match self.server {
            Some(_) => match self.resolver()?.lookup_ip(absolute(host)).await {
                Ok(lookup) => lookup.iter().collect(),
                Err(e) if e.is_nx_domain() || e.is_no_records_found() => Vec::new(),
                Err(e) => return Err(dns_failure(host, "A/AAAA", &e)),
            },
            // The system's own lookup, so /etc/hosts and nsswitch apply as for any program.
            None => tokio::net::lookup_host((host, 0))
                .await
                .map_err(|e| Failure::new("dns", format!("cannot resolve {host}: {e}")))?
                .map(|a| a.ip())
                .collect(),
        };
        if ips.is_empty() {
            return Err(Failure::new("dns", format!("no A or AAAA records found for {host}")));
        }
        for ip in &ips {
            self.check(*ip).map_err(|e| Failure::new("connection", format!("{host}: {e}")))?;
        }
        Ok(ips)
    }

    /// Whether an address may be dialled.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        match refused(ip) {
            Some(why) if !self.allow_loopback => Err(format!("refusing to connect to {ip} ({why} address)")),
            _ => Ok(()),
        }
    }
}

/// A resolution failure inside the HTTP client, kept whole so http-01 can report its
/// problem type.
#[derive(Debug)]
pub struct ResolveError(pub Failure);

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.detail)
    }
}

impl std::error::Error for ResolveError {}

impl reqwest::dns::Resolve for ValidationDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let dns = *self;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = dns.addresses(&host).await.map_err(|f| Box::new(ResolveError(f)))?;
            let addrs: reqwest::dns::Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// `name` as a fully qualified name, so no search domain is ever appended.
fn absolute(name: &str) -> String {
    if name.ends_with('.') { name.to_owned() } else { format!("{name}.") }
}

fn dns_failure(name: &str, kind: &str, e: &NetError) -> Failure {
    Failure::new("dns", format!("{kind} lookup of {name} failed: {e}"))
}

/// The reverse-mapping name of an address (RFC 8738 §6: the SNI of tls-alpn-01 for IPs).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut labels = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                labels.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            labels + "ip6.arpa"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_name("192.0.2.10".parse().unwrap()), "10.2.0.192.in-addr.arpa");
        assert_eq!(
            reverse_name("2001:db8::567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn guard_applies_to_answers() {
        let strict = ValidationDns { server: None, allow_loopback: false };
        assert!(strict.check("127.0.0.1".parse().unwrap()).is_err());
        assert!(strict.check("169.254.169.254".parse().unwrap()).is_err());
        assert!(strict.check("192.0.2.1".parse().unwrap()).is_ok());
        let open = ValidationDns { allow_loopback: true, ..strict };
        assert!(open.check("127.0.0.1".parse().unwrap()).is_ok());
    }
}
