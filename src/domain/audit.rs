//! The audit trail's vocabulary: who acted, what they did, to what, and the filters an
//! administrator queries the trail with. Pure: the service writes and reads the rows.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::AppError;

macro_rules! closed_strings {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            /// Every value, in documented order.
            pub const EVERY: &'static [$name] = &[$($name::$variant),*];

            /// The stored and documented string form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// Parses the string form; anything else is a 400 naming `field` and the values.
            pub fn parse(field: &str, text: &str) -> Result<Self, AppError> {
                Self::EVERY
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == text)
                    .ok_or_else(|| {
                        let known: Vec<&str> = Self::EVERY.iter().map(|v| v.as_str()).collect();
                        AppError::invalid(format!(
                            "{field}: unknown value {text:?} (expected one of {})",
                            known.join(", ")
                        ))
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_strings! {
    /// What was done.
    AuditAction {
        /// An app was registered.
        AppCreate => "app.create",
        /// An app's metadata changed.
        AppUpdate => "app.update",
        /// An app was deleted.
        AppDelete => "app.delete",
        /// An app got a new secret.
        AppSecretRotate => "app.secret.rotate",
        /// One of an app's secrets was ended.
        AppSecretRevoke => "app.secret.revoke",
        /// An app's logo changed.
        AppLogoChange => "app.logo.change",
        /// A user was created.
        UserCreate => "user.create",
        /// A user's name or email changed.
        UserUpdate => "user.update",
        /// A user's roles changed.
        UserRolesChange => "user.roles.change",
        /// An administrator or the operator set a user's password.
        UserPasswordSet => "user.password.set",
        /// A user changed their own password.
        UserPasswordChange => "user.password.change",
        /// A user was disabled.
        UserDisable => "user.disable",
        /// A user was enabled again.
        UserEnable => "user.enable",
        /// A user was deleted.
        UserDelete => "user.delete",
        /// A user's sessions were ended.
        UserSessionsEnd => "user.sessions.end",
        /// A user's connection to an app was deleted.
        ConnectionDelete => "connection.delete",
        /// A signing key was created for an algorithm that had none (start-up, or an app's
        /// ID-token algorithm).
        SigningKeyCreate => "signing_key.create",
        /// A signing key was added by rotation.
        SigningKeyRotate => "signing_key.rotate",
        /// A signing key was taken out of service before its time.
        SigningKeyRevoke => "signing_key.revoke",
        /// A sign-in failed (wrong username or password, or a disabled account).
        SignInFailure => "sign_in.failure",
        /// A sign-in was refused by the back-off.
        SignInThrottle => "sign_in.throttle",
    }
}

closed_strings! {
    /// What kind of thing an action was done to.
    AuditTarget {
        /// An app, by client id.
        App => "app",
        /// A user, by id.
        User => "user",
        /// A user's connection to an app, by `user_id/client_id`.
        Connection => "connection",
        /// A signing key, by kid.
        SigningKey => "signing_key",
    }
}

closed_strings! {
    /// Who acted.
    ActorKind {
        /// A signed-in user (their id is the actor id).
        User => "user",
        /// The operator, through the `idgraph` command line.
        Cli => "cli",
        /// idgraph itself (a schedule).
        System => "system",
        /// Nobody signed in (a failed sign-in).
        Anonymous => "anonymous",
    }
}

/// An audit event as transports see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Position in the trail (newest is highest).
    pub id: i64,
    /// When, Unix seconds.
    pub at: i64,
    /// What kind of actor ([`ActorKind`]'s string form).
    pub actor_kind: String,
    /// The acting user's id, for a user.
    pub actor_id: Option<String>,
    /// What was done ([`AuditAction`]'s string form).
    pub action: String,
    /// To what kind of thing ([`AuditTarget`]'s string form).
    pub target_type: String,
    /// Its id.
    pub target_id: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// The client's address.
    pub address: Option<String>,
    /// Details, a JSON object (never a secret).
    pub detail: serde_json::Value,
}

/// The position after which the next page of the trail starts: the last event's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCursor(pub i64);

/// What an administrator asks of the trail; every filter is optional and they combine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only what this user did.
    pub actor_id: Option<String>,
    /// Only actors of this kind.
    pub actor_kind: Option<ActorKind>,
    /// Only events on this kind of target.
    pub target_type: Option<AuditTarget>,
    /// Only events on the target with this id.
    pub target_id: Option<String>,
    /// Only events about this user: done to their account or to one of their connections.
    pub about_user: Option<String>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only events at or after this time, Unix seconds.
    pub since: Option<i64>,
    /// Only events before this time, Unix seconds.
    pub until: Option<i64>,
}

/// Longest id a filter may name.
const MAX_FILTER_ID: usize = 128;

impl AuditFilter {
    /// Checks the bounds: ids of a sane length, a time range that is not upside down.
    pub fn validate(self) -> Result<Self, AppError> {
        for (field, value) in [
            ("actor", &self.actor_id),
            ("targetId", &self.target_id),
            ("aboutUser", &self.about_user),
        ] {
            if value
                .as_ref()
                .is_some_and(|id| id.is_empty() || id.len() > MAX_FILTER_ID)
            {
                return Err(AppError::invalid(format!(
                    "{field}: must be 1 to {MAX_FILTER_ID} characters"
                )));
            }
        }
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since > until
        {
            return Err(AppError::invalid("since: must not be after until"));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_and_unknown_ones_are_named() {
        for action in AuditAction::EVERY {
            assert_eq!(
                AuditAction::parse("action", action.as_str()).ok(),
                Some(*action)
            );
        }
        let err = AuditAction::parse("action", "app.explode").unwrap_err();
        assert!(err.to_string().contains("app.explode"), "{err}");
        assert!(err.to_string().contains("user.disable"), "{err}");
    }

    #[test]
    fn an_upside_down_range_and_an_overlong_id_are_refused() {
        let range = AuditFilter {
            since: Some(10),
            until: Some(9),
            ..Default::default()
        };
        assert!(range.validate().is_err());
        let long = AuditFilter {
            actor_id: Some("a".repeat(129)),
            ..Default::default()
        };
        assert!(long.validate().is_err());
        let fine = AuditFilter {
            since: Some(9),
            until: Some(9),
            target_id: Some("x".into()),
            ..Default::default()
        };
        assert!(fine.validate().is_ok());
    }
}
