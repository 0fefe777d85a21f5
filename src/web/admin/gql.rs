//! The console's only way to data: the committed operations of `frontend-queries/`, run
//! in-process through the same schema, bounds and loaders as `POST /graphql`
//! ([`crate::graphql::http::run`]), as the signed-in person. The contract tests validate these
//! very documents against the schema, so they cover exactly what the console uses.

use async_graphql::{UploadValue, Variables};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::Principal;
use crate::edge::ClientAddr;
use crate::graphql::Schemas;
use crate::graphql::http::run;
use crate::service::AppState;

/// A committed document of `frontend-queries/`.
#[derive(Debug, Clone, Copy)]
pub enum Doc {
    Apps,
    Users,
    Keys,
    Audit,
}

impl Doc {
    fn text(self) -> &'static str {
        match self {
            Doc::Apps => include_str!("../../../frontend-queries/apps.graphql"),
            Doc::Users => include_str!("../../../frontend-queries/users.graphql"),
            Doc::Keys => include_str!("../../../frontend-queries/keys.graphql"),
            Doc::Audit => include_str!("../../../frontend-queries/audit.graphql"),
        }
    }
}

/// What went wrong, as a page shows it: next to the form field it concerns (`field`, the
/// input's name, as the service names it before the colon of its message) or above the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The form field, e.g. `redirect_uris`; empty when the problem is not about one field.
    pub field: String,
    /// The message, without the field's name when it led with `name: `.
    pub message: String,
    /// The message as GraphQL gave it.
    pub full: String,
    /// The error's `extensions.code`.
    pub code: String,
}

impl Problem {
    fn of(error: &async_graphql::ServerError) -> Self {
        let code = error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"))
            .and_then(|code| match code {
                async_graphql::Value::String(code) => Some(code.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "INTERNAL".into());
        let (field, message) = split_field(&error.message);
        Self {
            field,
            message,
            full: error.message.clone(),
            code,
        }
    }

    /// A problem about no field.
    pub fn general(code: &str, message: String) -> Self {
        Self {
            field: String::new(),
            full: message.clone(),
            message,
            code: code.into(),
        }
    }

    /// The status a page answers this problem with.
    pub fn status(&self) -> StatusCode {
        match self.code.as_str() {
            "INVALID_INPUT" | "GRAPHQL_VALIDATION_FAILED" => StatusCode::UNPROCESSABLE_ENTITY,
            "FORBIDDEN" => StatusCode::FORBIDDEN,
            "NOT_FOUND" => StatusCode::NOT_FOUND,
            "CONFLICT" => StatusCode::CONFLICT,
            "PAYLOAD_TOO_LARGE" => StatusCode::PAYLOAD_TOO_LARGE,
            "UNSUPPORTED_MEDIA_TYPE" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNAUTHENTICATED" | "INVALID_TOKEN" | "INVALID_CREDENTIALS" => StatusCode::UNAUTHORIZED,
            "TOO_MANY_ATTEMPTS" => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The form field a message is about: `"redirect_uris[1]: must be absolute"` →
/// (`redirect_uris`, `must be absolute`); `"username must be 1 to 64 characters"` →
/// (`username`, the whole message). Any other message is about no one field.
fn split_field(message: &str) -> (String, String) {
    let plain = |name: &str| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
    };
    if let Some((head, rest)) = message.split_once(": ") {
        let name = head.split('[').next().unwrap_or(head);
        if plain(name) {
            return (name.to_string(), rest.to_string());
        }
    }
    let mut words = message.splitn(3, ' ');
    if let (Some(name), Some("must" | "may" | "is")) = (words.next(), words.next())
        && plain(name)
    {
        return (name.to_string(), message.to_string());
    }
    (String::new(), message.to_string())
}

/// An operation's answer.
#[derive(Debug)]
pub struct Answer {
    pub data: Value,
    pub problems: Vec<Problem>,
}

impl Answer {
    /// The root field `name` as `T`, when the operation succeeded; its problems otherwise.
    pub fn take<T: DeserializeOwned>(mut self, name: &str) -> Result<T, Vec<Problem>> {
        if !self.problems.is_empty() {
            return Err(self.problems);
        }
        serde_json::from_value(self.data[name].take()).map_err(|err| {
            tracing::error!(error = %err, field = name, "console: unexpected GraphQL answer");
            vec![Problem::general(
                "INTERNAL",
                "The answer had an unexpected shape.".into(),
            )]
        })
    }
}

/// Runs operations as one person.
#[derive(Clone)]
pub struct Gql {
    pub schemas: Schemas,
    pub state: AppState,
    pub principal: Principal,
    pub addr: ClientAddr,
}

impl Gql {
    /// Runs `operation` of `doc` with `variables`.
    pub async fn run(&self, doc: Doc, operation: &str, variables: Value) -> Answer {
        let request = async_graphql::Request::new(doc.text())
            .operation_name(operation)
            .variables(Variables::from_json(variables));
        self.send(request).await
    }

    /// Runs `operation` with `upload` as the variable `variable`.
    pub async fn run_with_upload(
        &self,
        doc: Doc,
        operation: &str,
        variables: Value,
        variable: &str,
        upload: UploadValue,
    ) -> Answer {
        let mut request = async_graphql::Request::new(doc.text())
            .operation_name(operation)
            .variables(Variables::from_json(variables));
        request.set_upload(&format!("variables.{variable}"), upload);
        self.send(request).await
    }

    async fn send(&self, request: async_graphql::Request) -> Answer {
        let (response, _) = run(
            &self.schemas,
            self.state.clone(),
            self.principal.clone(),
            self.addr,
            request,
        )
        .await;
        let problems = response.errors.iter().map(Problem::of).collect();
        let data = response.data.into_json().unwrap_or(Value::Null);
        Answer { data, problems }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_names_its_field_before_the_colon() {
        assert_eq!(
            split_field("redirect_uris[1]: must be absolute"),
            ("redirect_uris".into(), "must be absolute".into())
        );
        assert_eq!(
            split_field("the token lacks the scope all"),
            (String::new(), "the token lacks the scope all".into())
        );
        assert_eq!(
            split_field("username must be 1 to 64 characters"),
            (
                "username".into(),
                "username must be 1 to 64 characters".into()
            )
        );
        assert_eq!(
            split_field("Unknown argument: x"),
            (String::new(), "Unknown argument: x".into())
        );
    }
}
