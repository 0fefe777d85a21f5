//! Who uses the admin console (`/admin`) and GraphiQL from a browser: the person signed in on
//! idgraph's hosted pages, acting on idgraph itself.
//!
//! The console rides on the hosted sign-in session (the same cookie, the same back-off, the
//! same expiry). Through it the person acts with every scope (`all`): what they may do is
//! decided by their roles, at each operation, exactly as for a first-party token. The
//! console's pages read and change nothing through this module; they run the committed
//! GraphQL operations as [`ConsoleUser::principal`].
//!
//! Every state-changing console form carries [`form_token`]: a MAC of the cookie's value, so a
//! page of another site cannot post one (the cookie is also `SameSite=Lax`).

use secrecy::SecretString;

use crate::auth::Principal;
use crate::domain::{Scope, ScopeSet};
use crate::error::AppResult;
use crate::service::AppState;
use crate::service::browser::{self, BrowserContext, SignedInAs};

/// The MAC purpose of console forms.
const CONSOLE_FORM: &str = "console";

/// The person signed in on this browser.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    /// As the GraphQL schema sees them: their roles, every scope, this browser session.
    pub principal: Principal,
    /// Who they are, for the page header.
    pub signed_in_as: SignedInAs,
}

impl ConsoleUser {
    /// Whether the console is theirs to use: the gate's oauth admin (role `admin` or `oauth`).
    pub fn may_use_console(&self) -> bool {
        self.principal.require_oauth_admin(Scope::AppRead).is_ok()
    }

    /// Whether the gate lets them administer users, keys and the audit trail (role `admin`).
    pub fn is_admin(&self) -> bool {
        self.principal.require_admin(Scope::UserRead).is_ok()
    }
}

/// The person the browser's cookie names a live session of, if any.
pub async fn signed_in(state: &AppState, cookie: Option<&str>) -> AppResult<Option<ConsoleUser>> {
    let Some(session) = browser::find(state, cookie).await? else {
        return Ok(None);
    };
    let principal = session.principal_with(ScopeSet::all())?;
    Ok(Some(ConsoleUser {
        principal,
        signed_in_as: session.signed_in_as(),
    }))
}

/// Checks the password (with the sign-in back-off) and opens a browser session; answers the
/// new cookie value. `context.cookie` is the session it replaces, if any.
pub async fn sign_in(
    state: &AppState,
    context: &BrowserContext,
    username: &str,
    password: SecretString,
) -> AppResult<String> {
    let (value, _) = browser::sign_in(state, username.trim(), password, context).await?;
    Ok(value)
}

/// Ends the browser session `cookie` names (with what ends with it).
pub async fn sign_out(state: &AppState, cookie: &str) -> AppResult<()> {
    browser::sign_out(state, cookie).await.map(drop)
}

/// The token every console form carries for the browser holding `cookie`.
pub fn form_token(state: &AppState, cookie: &str) -> String {
    state.sealer.token(CONSOLE_FORM, cookie)
}

/// Whether `token` is [`form_token`] for `cookie` (constant time).
pub fn check_form_token(state: &AppState, cookie: &str, token: &str) -> bool {
    state.sealer.check_token(CONSOLE_FORM, cookie, token)
}
