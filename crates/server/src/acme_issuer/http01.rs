//! The built-in http-01 responder: serves `/.well-known/acme-challenge/{token}` on an issuer's
//! `http01_listen` address only while at least one order on that address is being validated.
//! Orders running at once share one listener; the last one to finish stops it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::oneshot;

use crate::error::{ApiError, ApiResult};

/// Attempts at binding an address a just-stopped responder may still hold.
const BIND_ATTEMPTS: u32 = 40;
const BIND_PAUSE: Duration = Duration::from_millis(50);

type Tokens = Arc<RwLock<HashMap<String, String>>>;

/// One running listener; it stops when the last handle is dropped.
pub struct Responder {
    tokens: Tokens,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = stop.send(());
        }
    }
}

/// A published challenge response; dropping it withdraws the token.
pub struct Published {
    responder: Arc<Responder>,
    token: String,
}

impl Drop for Published {
    fn drop(&mut self) {
        self.responder.tokens.write().unwrap_or_else(|e| e.into_inner()).remove(&self.token);
    }
}

impl Published {
    pub fn publish(responder: &Arc<Responder>, token: &str, key_authorization: &str) -> Published {
        responder
            .tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.to_owned(), key_authorization.to_owned());
        Published { responder: responder.clone(), token: token.to_owned() }
    }
}

/// The responders running in this process, by listen address.
#[derive(Default)]
pub struct Responders {
    running: Mutex<HashMap<SocketAddr, Weak<Responder>>>,
}

async fn answer(State(tokens): State<Tokens>, Path(token): Path<String>) -> axum::response::Response {
    match tokens.read().unwrap_or_else(|e| e.into_inner()).get(&token) {
        Some(key_authorization) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], key_authorization.clone()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

impl Responders {
    /// The responder on `listen`, started when none runs there.
    pub async fn acquire(&self, listen: SocketAddr) -> ApiResult<Arc<Responder>> {
        let mut attempt = 0;
        loop {
            match self.try_acquire(listen) {
                Ok(responder) => return Ok(responder),
                // A responder that just stopped may hold the port for a moment.
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < BIND_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(BIND_PAUSE).await;
                }
                Err(e) => {
                    return Err(ApiError::Upstream(format!(
                        "the http-01 responder cannot listen on {listen} (config.http01_listen): {e}"
                    )));
                }
            }
        }
    }

    fn try_acquire(&self, listen: SocketAddr) -> std::io::Result<Arc<Responder>> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(responder) = running.get(&listen).and_then(Weak::upgrade) {
            return Ok(responder);
        }
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let tokens: Tokens = Arc::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new().route("/.well-known/acme-challenge/{token}", get(answer)).with_state(tokens.clone());
        tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = served.await {
                tracing::warn!(%listen, error = %e, "the http-01 responder failed");
            }
        });
        tracing::info!(%listen, "http-01 responder started");
        let responder = Arc::new(Responder { tokens, stop: Mutex::new(Some(stop)) });
        running.insert(listen, Arc::downgrade(&responder));
        Ok(responder)
    }
}
