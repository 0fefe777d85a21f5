//! Rotating refresh tokens, one implementation for first-party sessions and app grants alike.
//!
//! A refresh token reads `<family id>.<secret>`; only the secret's SHA-256 digest is stored.
//! Using it swaps the digest with a compare-and-set `UPDATE`, so a token works once.
//! Presenting a token that was handed out and has since been rotated out (or two requests
//! racing with one token) revokes the whole family: someone other than its holder has it.
//!
//! Family ids are not secret (an app's access tokens carry theirs as `gid`, a session listing
//! shows a session's), so a wrong secret alone proves nothing: a family keeps the digest
//! prefixes of its last [`RETIRED_KEPT`] rotated-out secrets ([`retire`]), and a secret that is
//! neither the current one nor among them was never handed out. It is refused, and the family
//! lives on. A token rotated out longer ago than that is refused without ending the family
//! too: by then its holder has long been refreshing with newer ones.

use std::future::Future;

use sea_orm::DbErr;
use sea_orm::sea_query::{Expr, Func, IntoColumnRef, SimpleExpr};

use crate::domain::secret::{digest, digest_matches, random_token};
use crate::error::AppResult;

/// Longest family id and secret accepted (ours are 22 and 43 characters).
const MAX_FAMILY_LEN: usize = 32;
const MAX_SECRET_LEN: usize = 64;

/// How many hex characters of a rotated-out secret's digest a family keeps (64 bits: a guess
/// matches one by chance about once in 2^59 tries against 32 of them).
const RETIRED_PREFIX: usize = 16;

/// How many rotated-out secrets a family remembers.
pub const RETIRED_KEPT: usize = 32;

/// The new value of a family's `retired_refresh` (`column`) once the secret whose digest is
/// `stored` is rotated out: its prefix first, the oldest beyond [`RETIRED_KEPT`] dropped. An
/// expression over the column's current value, so that the compare-and-set that rotates writes
/// it in the same statement. (`concat` skips a NULL, on SQLite as on PostgreSQL.)
pub fn retire(column: impl IntoColumnRef, stored: &str) -> SimpleExpr {
    let prefix = stored.get(..RETIRED_PREFIX).unwrap_or(stored);
    // `int` arguments: PostgreSQL has `substr(text, int, int)` and no `bigint` form.
    let kept = i32::try_from(RETIRED_PREFIX * RETIRED_KEPT).unwrap_or(i32::MAX);
    Func::cust("substr")
        .arg(Func::cust("concat").arg(prefix).arg(Expr::col(column)))
        .arg(1_i32)
        .arg(kept)
        .into()
}

/// Whether `secret` is one of the rotated-out secrets `retired` remembers.
fn handed_out_before(secret: &str, retired: Option<&str>) -> bool {
    let Some(retired) = retired else {
        return false;
    };
    let digest = digest(secret);
    let prefix = &digest.as_bytes()[..RETIRED_PREFIX];
    retired
        .as_bytes()
        .chunks(RETIRED_PREFIX)
        .any(|kept| kept == prefix)
}

/// Splits a refresh token into its family id and secret; `None` when it cannot be one.
pub fn split(token: &str) -> Option<(&str, &str)> {
    token.split_once('.').filter(|(family, secret)| {
        !family.is_empty()
            && family.len() <= MAX_FAMILY_LEN
            && !secret.is_empty()
            && secret.len() <= MAX_SECRET_LEN
    })
}

/// A fresh secret: the secret part of a token, and the digest to store.
pub fn new_secret() -> (String, String) {
    let secret = random_token(32);
    let stored = digest(&secret);
    (secret, stored)
}

/// The token of `family` with `secret`.
pub fn join(family: &str, secret: &str) -> String {
    format!("{family}.{secret}")
}

/// A fresh token for `family`: the token to hand out and the digest to store.
pub fn mint(family: &str) -> (String, String) {
    let (secret, stored) = new_secret();
    (join(family, &secret), stored)
}

/// A table of token families (sessions, grants): how to find one, swap its digest and end it.
pub trait Families {
    /// A family's row.
    type Row: Send;

    /// The family named `id`, if it exists.
    fn find(&self, id: &str) -> impl Future<Output = Result<Option<Self::Row>, DbErr>> + Send;

    /// Whether the row may be refreshed by this caller at all (it belongs to them, it was
    /// meant to have refresh tokens, it is not revoked). A row that fails this is refused
    /// without being revoked.
    fn admits(&self, row: &Self::Row) -> bool;

    /// The stored digest of the current secret.
    fn stored_digest<'r>(&self, row: &'r Self::Row) -> Option<&'r str>;

    /// The prefixes of the rotated-out secrets' digests (`retired_refresh`, see [`retire`]).
    fn retired<'r>(&self, row: &'r Self::Row) -> Option<&'r str>;

    /// Whether the current token has expired at `now`.
    fn expired(&self, row: &Self::Row, now: i64) -> bool;

    /// Swaps the digest from `from` to `to` when it still is `from`, retiring `from`
    /// ([`retire`]); whether it did.
    fn swap(
        &self,
        row: &Self::Row,
        from: &str,
        to: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, DbErr>> + Send;

    /// Ends the family at `now`: its refresh and access tokens stop working (on every node: the
    /// family announces it).
    fn revoke(&self, row: &Self::Row, now: i64) -> impl Future<Output = Result<(), DbErr>> + Send;
}

/// What became of a refresh token.
pub enum Rotation<Row, T> {
    /// It was good: here is the family, the token that replaces it, and what the caller's
    /// check made of the row.
    Rotated { row: Row, token: String, checked: T },
    /// It was unknown, not the caller's, or expired; nothing changed.
    Refused,
    /// It had been handed out and used before: the family is revoked.
    Reused,
}

/// Rotates `token` in `families` at `now`. `check` sees a good token's row before it is
/// rotated (a request it refuses leaves the token working) and its error is returned as is.
pub async fn rotate<F: Families, T, E>(
    families: &F,
    token: &str,
    now: i64,
    check: impl FnOnce(&F::Row) -> Result<T, E>,
) -> AppResult<Result<Rotation<F::Row, T>, E>> {
    let Some((id, secret)) = split(token) else {
        return Ok(Ok(Rotation::Refused));
    };
    let Some(row) = families.find(id).await? else {
        return Ok(Ok(Rotation::Refused));
    };
    if !families.admits(&row) {
        return Ok(Ok(Rotation::Refused));
    }
    let Some(stored) = families.stored_digest(&row).map(str::to_string) else {
        return Ok(Ok(Rotation::Refused));
    };
    if !digest_matches(secret, &stored) {
        if !handed_out_before(secret, families.retired(&row)) {
            // A guess at a known family id: no token of the family has leaked.
            return Ok(Ok(Rotation::Refused));
        }
        families.revoke(&row, now).await?;
        return Ok(Ok(Rotation::Reused));
    }
    if families.expired(&row, now) {
        return Ok(Ok(Rotation::Refused));
    }
    let checked = match check(&row) {
        Ok(checked) => checked,
        Err(err) => return Ok(Err(err)),
    };
    let (token, next) = mint(id);
    if !families.swap(&row, &stored, &next, now).await? {
        // Another request rotated this very token first: it was used twice.
        families.revoke(&row, now).await?;
        return Ok(Ok(Rotation::Reused));
    }
    Ok(Ok(Rotation::Rotated {
        row,
        token,
        checked,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_into_family_and_secret_within_bounds() {
        let (token, stored) = mint("family");
        let (family, secret) = split(&token).unwrap();
        assert_eq!(family, "family");
        assert!(digest_matches(secret, &stored));
        for bad in [
            "",
            "nodot",
            ".secret",
            "family.",
            &format!("{}.s", "f".repeat(33)),
        ] {
            assert!(split(bad).is_none(), "{bad:?}");
        }
    }

    /// The prefixes `retire` writes are the ones `handed_out_before` reads, and only those.
    #[test]
    fn a_retired_secret_is_recognised_and_a_guess_is_not() {
        let (secret, stored) = new_secret();
        let (other, other_stored) = new_secret();
        let retired = format!(
            "{}{}",
            &other_stored[..RETIRED_PREFIX],
            &stored[..RETIRED_PREFIX]
        );
        assert!(handed_out_before(&secret, Some(&retired)));
        assert!(handed_out_before(&other, Some(&retired)));
        let (guess, _) = new_secret();
        assert!(!handed_out_before(&guess, Some(&retired)));
        assert!(!handed_out_before(&secret, None));
        // Only whole prefixes count: one straddling two kept prefixes is no match.
        let straddling = format!("{}{}", &"0".repeat(8), &retired[..RETIRED_PREFIX * 2 - 8]);
        assert!(!handed_out_before(&secret, Some(&straddling)));
    }
}
