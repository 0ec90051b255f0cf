//! certctl-agent against a real certctl-server (in process, SQLite, HTTPS with its bootstrap CA)
//! and real nginx, haproxy and apache2 on loopback high ports.

mod agent {
    pub mod harness;
    pub mod lifecycle;
    pub mod peers;
    pub mod servers;
    pub mod tls;
}
