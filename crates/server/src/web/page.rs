//! What every page shares: the layout's data, rendering, and the error page.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::session::Session;
use crate::error::ApiError;

/// The layout's data: who is signed in, what they may do, where they are.
pub struct Chrome {
    pub user: String,
    pub role: String,
    pub csrf_token: String,
    pub can_write: bool,
    /// The sidebar entry to highlight.
    pub section: &'static str,
    pub version: &'static str,
}

impl Chrome {
    pub fn new(session: &Session, section: &'static str) -> Chrome {
        Chrome {
            user: session.principal.name.clone(),
            role: session.principal.role.to_string(),
            csrf_token: session.csrf_token.clone(),
            can_write: session.can_write(),
            section,
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// `class="active"` for the current sidebar entry.
    pub fn nav(&self, section: &str) -> &'static str {
        if self.section == section { "active" } else { "" }
    }
}

/// Renders a template to an HTML response body.
pub fn render<T: Template>(page: &T) -> Result<Html<String>, WebError> {
    page.render().map(Html).map_err(|e| WebError::Render(e.to_string()))
}

/// Renders a full page.
pub fn respond<T: Template>(page: &T) -> Result<Response, WebError> {
    Ok(render(page)?.into_response())
}

/// Renders a full page with `status` instead of 200 when one is given (a form re-shown with
/// the API's refusal keeps the refusal's status).
pub fn respond_with<T: Template>(page: &T, status: Option<StatusCode>) -> Result<Response, WebError> {
    let mut response = respond(page)?;
    if let Some(status) = status {
        *response.status_mut() = status;
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub csrf_token: String,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub version: &'static str,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
    version: &'static str,
}

/// Why a page could not be shown; rendered as a readable page, never as raw JSON.
#[derive(Debug)]
pub enum WebError {
    /// The REST API refused the call; its status and message are shown.
    Api { status: StatusCode, message: String },
    /// The form's CSRF token is missing or wrong.
    Csrf,
    /// A template failed to render (a bug); logged, not shown.
    Render(String),
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        if let ApiError::Internal(cause) | ApiError::Unavailable(cause) = &e {
            tracing::error!(cause, "dashboard request failed");
        }
        WebError::Api { status: e.status(), message: e.to_string() }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            WebError::Api { status, message } => {
                let title = match status {
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::CONFLICT => "Conflict",
                    s if s.is_server_error() => "Something went wrong",
                    _ => "Request refused",
                };
                (status, title, message)
            }
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "The form's security token is missing or does not match this session. Go back, reload the page and \
                 try again."
                    .to_owned(),
            ),
            WebError::Render(cause) => {
                tracing::error!(cause, "dashboard template failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The page could not be rendered.".to_owned(),
                )
            }
        };
        let page = ErrorPage { status: status.as_u16(), title, message, version: env!("CARGO_PKG_VERSION") };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, title).into_response(),
        }
    }
}
