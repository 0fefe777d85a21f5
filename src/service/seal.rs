//! Sealing what the hosted pages hand to the browser and expect back: a value is carried as a
//! base64url JSON payload beside an HMAC-SHA256 tag over (purpose, cookie value, payload). The
//! key is 256 random bits in `server_secrets`, shared by every node.
//!
//! Binding the tag to the browser's cookie makes it the form's CSRF token as well: a form posted
//! from another site, or with another browser's tag, does not verify. Binding it to a purpose
//! keeps a tag made for one form from opening another.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::db::entities::server_secrets;
use crate::error::{AppError, AppResult};

/// The name of the key's row in `server_secrets`.
const KEY_NAME: &str = "form-seal";

/// Largest payload ever opened (a sealed authorization request is well under it).
const MAX_PAYLOAD: usize = 16 * 1024;

/// A sealed value: what the page carries in two hidden fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// base64url of the value's JSON (the form's `request` field).
    pub payload: String,
    /// base64url of the tag (the form's `csrf` field).
    pub tag: String,
}

/// Seals and opens values with the shared key.
pub struct Sealer {
    key: hmac::Key,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// Reads the shared key, creating it when no node has yet. Safe when several nodes start
    /// at once: the first insert wins and every node reads the winner.
    pub async fn load(db: &DatabaseConnection, now: i64) -> AppResult<Self> {
        let mut fresh = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut fresh);
        server_secrets::Entity::insert(server_secrets::ActiveModel {
            name: Set(KEY_NAME.into()),
            value: Set(fresh.to_vec()),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(server_secrets::Column::Name)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
        let row = server_secrets::Entity::find_by_id(KEY_NAME)
            .one(db)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("the form-seal key is missing")))?;
        Ok(Self::from_key(&row.value))
    }

    /// A sealer over raw key bytes.
    pub fn from_key(key: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// The signed message: each part length-prefixed, so no two inputs run together.
    fn message(purpose: &str, cookie: &str, payload: &str) -> Vec<u8> {
        let mut message = Vec::with_capacity(purpose.len() + cookie.len() + payload.len() + 24);
        for part in [purpose, cookie, payload] {
            message.extend_from_slice(&(part.len() as u64).to_be_bytes());
            message.extend_from_slice(part.as_bytes());
        }
        message
    }

    fn tag_of(&self, purpose: &str, cookie: &str, payload: &str) -> String {
        let tag = hmac::sign(&self.key, &Self::message(purpose, cookie, payload));
        URL_SAFE_NO_PAD.encode(tag)
    }

    /// The tag of a bare purpose for `cookie` (a form that carries no value, like sign-out).
    pub fn token(&self, purpose: &str, cookie: &str) -> String {
        self.tag_of(purpose, cookie, "")
    }

    /// Whether `tag` is [`Sealer::token`] of `purpose` for `cookie` (constant time).
    pub fn check_token(&self, purpose: &str, cookie: &str, tag: &str) -> bool {
        self.verify(purpose, cookie, "", tag)
    }

    fn verify(&self, purpose: &str, cookie: &str, payload: &str, tag: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        hmac::verify(&self.key, &Self::message(purpose, cookie, payload), &tag).is_ok()
    }

    /// Seals `value` for the holder of `cookie`.
    pub fn seal<T: Serialize>(&self, purpose: &str, cookie: &str, value: &T) -> AppResult<Sealed> {
        let json = serde_json::to_vec(value).map_err(AppError::internal)?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = self.tag_of(purpose, cookie, &payload);
        Ok(Sealed { payload, tag })
    }

    /// Opens a value sealed for `cookie` and `purpose`; `None` when the tag does not verify or
    /// the payload is not what was sealed.
    pub fn open<T: DeserializeOwned>(
        &self,
        purpose: &str,
        cookie: &str,
        sealed: &Sealed,
    ) -> Option<T> {
        if sealed.payload.len() > MAX_PAYLOAD
            || !self.verify(purpose, cookie, &sealed.payload, &sealed.tag)
        {
            return None;
        }
        let json = URL_SAFE_NO_PAD.decode(&sealed.payload).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_for_its_cookie_and_purpose() {
        let sealer = Sealer::from_key(b"0123456789abcdef0123456789abcdef");
        let sealed = sealer.seal("consent", "cookie-a", &("x", 1)).unwrap();
        assert_eq!(
            sealer.open::<(String, i32)>("consent", "cookie-a", &sealed),
            Some(("x".into(), 1))
        );
        assert_eq!(
            sealer.open::<(String, i32)>("consent", "cookie-b", &sealed),
            None
        );
        assert_eq!(
            sealer.open::<(String, i32)>("sign-in", "cookie-a", &sealed),
            None
        );
        let mut tampered = sealed.clone();
        tampered.payload = sealer
            .seal("consent", "cookie-a", &("y", 1))
            .unwrap()
            .payload;
        assert_eq!(
            sealer.open::<(String, i32)>("consent", "cookie-a", &tampered),
            None
        );
        let other_key = Sealer::from_key(b"another key of thirty-two bytes!");
        assert_eq!(
            other_key.open::<(String, i32)>("consent", "cookie-a", &sealed),
            None
        );
    }

    #[test]
    fn tokens_belong_to_one_cookie_and_purpose() {
        let sealer = Sealer::from_key(b"0123456789abcdef0123456789abcdef");
        let token = sealer.token("logout", "cookie-a");
        assert!(sealer.check_token("logout", "cookie-a", &token));
        assert!(!sealer.check_token("logout", "cookie-b", &token));
        assert!(!sealer.check_token("sign-in", "cookie-a", &token));
        assert!(!sealer.check_token("logout", "cookie-a", ""));
        assert!(!sealer.check_token("logout", "cookie-a", "not base64!"));
    }
}
