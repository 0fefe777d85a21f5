//! The caller of an operation and the one gate every operation passes through.
//!
//! Services decide authorization by calling the checks here; GraphQL guards and REST extractors
//! call the very same checks to reject early, never logic of their own.

use crate::domain::ids::{BrowserSessionId, SessionId, UserId};
use crate::error::AppError;

use crate::domain::{Role, Scope, ScopeSet};

/// A signed-in user, as established by a valid first-party session token.
#[derive(Debug, Clone)]
pub struct UserPrincipal {
    /// The user.
    pub user_id: UserId,
    /// The user's roles, read from the database when the token was checked.
    pub roles: Vec<Role>,
    /// The scopes granted to the token.
    pub scopes: ScopeSet,
    /// The sign-in the caller acts through.
    pub session: SessionRef,
    /// When the user signed in (the session's start), Unix seconds.
    pub auth_time: i64,
}

/// Which sign-in a [`UserPrincipal`] acts through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRef {
    /// A first-party session opened by `login` (a bearer token).
    Api(SessionId),
    /// A sign-in on the hosted pages (a browser cookie), by the session's public id (`sid`;
    /// `None` for a session opened by the previous release).
    Browser(Option<BrowserSessionId>),
}

impl UserPrincipal {
    /// Whether the user holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// No credentials were presented.
    Anonymous,
    /// A bearer token was presented and was not valid (bad, expired or revoked).
    InvalidToken,
    /// A signed-in user with a first-party session token.
    User(UserPrincipal),
    /// A valid token of another kind (an OAuth app's access token): good for `/userinfo`
    /// only, never for a management operation.
    ThirdParty,
    /// The local operator running the CLI; never built from a request.
    System,
}

impl Principal {
    /// Requires a signed-in user whose token carries `scope` (or `all`).
    pub fn require_user(&self, scope: Scope) -> Result<&UserPrincipal, AppError> {
        let user = self.require_signed_in()?;
        if user.scopes.allows(scope) {
            Ok(user)
        } else {
            Err(AppError::forbidden(format!(
                "the token lacks the scope {scope}"
            )))
        }
    }

    /// Requires a signed-in user, whatever the token's scopes (for `viewer` and `logout`).
    pub fn require_signed_in(&self) -> Result<&UserPrincipal, AppError> {
        match self {
            Principal::User(user) => Ok(user),
            Principal::Anonymous => Err(AppError::Unauthenticated),
            Principal::InvalidToken => Err(AppError::InvalidToken),
            Principal::ThirdParty => Err(AppError::forbidden(
                "an app's access token cannot be used for management operations",
            )),
            Principal::System => Err(AppError::forbidden("this operation needs a signed-in user")),
        }
    }

    /// Requires an oauth admin (role `oauth` or `admin`) whose token carries `scope`.
    pub fn require_oauth_admin(&self, scope: Scope) -> Result<&UserPrincipal, AppError> {
        let user = self.require_user(scope)?;
        if user.has_role(Role::Oauth) || user.has_role(Role::Admin) {
            Ok(user)
        } else {
            Err(AppError::forbidden(
                "this operation needs the oauth or admin role",
            ))
        }
    }

    /// Requires the local operator, or a signed-in user with role `admin` whose token carries
    /// `scope`. Answers the user (`None` for the operator).
    pub fn require_admin(&self, scope: Scope) -> Result<Option<&UserPrincipal>, AppError> {
        match self {
            Principal::System => Ok(None),
            _ => {
                let user = self.require_user(scope)?;
                if user.has_role(Role::Admin) {
                    Ok(Some(user))
                } else {
                    Err(AppError::forbidden("this operation needs the admin role"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: Vec<Role>, scope: &str) -> Principal {
        Principal::User(UserPrincipal {
            user_id: UserId::from_trusted("u".into()),
            roles,
            scopes: ScopeSet::parse(scope).unwrap(),
            session: SessionRef::Api(SessionId::from_trusted("s".into())),
            auth_time: 0,
        })
    }

    #[test]
    fn missing_and_invalid_tokens_are_told_apart() {
        assert!(matches!(
            Principal::Anonymous.require_user(Scope::AppRead),
            Err(AppError::Unauthenticated)
        ));
        assert!(matches!(
            Principal::InvalidToken.require_user(Scope::AppRead),
            Err(AppError::InvalidToken)
        ));
    }

    #[test]
    fn oauth_admin_needs_both_role_and_scope() {
        let plain = user(vec![], "all");
        assert!(matches!(
            plain.require_oauth_admin(Scope::AppRead),
            Err(AppError::Forbidden(_))
        ));
        let narrow = user(vec![Role::Oauth], "gov.user.oauth.app:read");
        assert!(narrow.require_oauth_admin(Scope::AppRead).is_ok());
        assert!(narrow.require_oauth_admin(Scope::AppWrite).is_err());
        let admin = user(vec![Role::Admin], "all");
        assert!(admin.require_oauth_admin(Scope::AppWrite).is_ok());
    }

    #[test]
    fn user_administration_needs_the_admin_role_and_the_scope() {
        let oauth = user(vec![Role::Oauth], "all");
        assert!(matches!(
            oauth.require_admin(Scope::UserRead),
            Err(AppError::Forbidden(_))
        ));
        let reader = user(vec![Role::Admin], "gov.user.admin.user:read");
        assert!(reader.require_admin(Scope::UserRead).is_ok());
        assert!(reader.require_admin(Scope::UserWrite).is_err());
        assert!(matches!(
            Principal::System.require_admin(Scope::UserWrite),
            Ok(None)
        ));
    }

    #[test]
    fn third_party_tokens_never_pass_a_management_guard() {
        assert!(matches!(
            Principal::ThirdParty.require_user(Scope::ConnectionRead),
            Err(AppError::Forbidden(_))
        ));
    }
}
