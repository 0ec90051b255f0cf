//! The SSRF guard of every outbound notification dial: loopback, link-local, unspecified and
//! cloud-metadata addresses are refused unless `CERTCTL_ALLOW_LOOPBACK_TARGETS=true`. Host names
//! are checked after resolution, on every address, inside the HTTP client's own resolver, so the
//! address checked is the address dialled (no DNS-rebinding gap).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address may not be dialled, or `None` when it may.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4);
            }
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("cloud metadata")
            } else {
                None
            }
        }
    }
}

fn refused_v4(v4: Ipv4Addr) -> Option<&'static str> {
    if v4.is_loopback() {
        Some("loopback")
    } else if v4.is_unspecified() || v4.is_broadcast() {
        Some("unspecified")
    } else if v4.is_link_local() {
        // 169.254.169.254 (AWS, GCP, Azure, OpenStack metadata) is in here.
        Some("link-local / cloud metadata")
    } else if v4 == Ipv4Addr::new(100, 100, 100, 200) {
        Some("cloud metadata")
    } else {
        None
    }
}

/// Checks an IP-literal host of a URL (names are checked by [`GuardedResolver`]).
pub fn check_literal(url: &reqwest::Url, allow_loopback: bool) -> Result<(), String> {
    if allow_loopback {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let Ok(ip) = host.parse::<IpAddr>() else { return Ok(()) };
    match refused(ip) {
        Some(why) => Err(format!("refusing to connect to {ip} ({why} address)")),
        None => Ok(()),
    }
}

/// Resolves with the system resolver and refuses the whole name when any address is forbidden.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow {
                for a in &addrs {
                    if let Some(why) = refused(a.ip()) {
                        return Err(format!(
                            "refusing to connect to {host}: it resolves to {} ({why} address)",
                            a.ip()
                        )
                        .into());
                    }
                }
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for ip in ["127.0.0.1", "::1", "169.254.169.254", "0.0.0.0", "fe80::1", "::ffff:127.0.0.1", "fd00:ec2::254"] {
            assert!(refused(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["93.184.216.34", "10.0.0.1", "2001:db8::1"] {
            assert!(refused(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }
}
