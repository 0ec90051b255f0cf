//! certctl-agent against a real certctl-server and real nginx, haproxy and apache2.
