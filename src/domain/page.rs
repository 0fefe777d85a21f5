//! Listings: which slice to return (an offset page for REST, a keyset page for GraphQL), their
//! bounds and defaults, and the opaque cursors of keyset pages. Decided once for every listing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::text::nul_in_json;
use crate::error::AppError;

/// Largest page of any listing.
pub const MAX_PAGE: u64 = 1024;
/// Largest REST `offset` (the SQL drivers bind offsets as signed 64-bit integers).
pub const MAX_OFFSET: u64 = i64::MAX as u64;
/// REST page size when `amount` is not given.
pub const DEFAULT_AMOUNT: u64 = 32;
/// GraphQL page size when `first` is not given.
pub const DEFAULT_FIRST: u64 = 50;
/// Longest cursor accepted.
const MAX_CURSOR_LEN: usize = 1024;

/// Which slice of a listing to return; `C` is the listing's cursor type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page<C> {
    /// REST: `amount` rows after skipping `offset`.
    Offset {
        /// 1..=[`MAX_PAGE`].
        amount: u64,
        /// 0..=[`MAX_OFFSET`].
        offset: u64,
    },
    /// GraphQL: `first` rows after the cursor.
    After {
        /// 1..=[`MAX_PAGE`].
        first: u64,
        /// Start after this position, or at the beginning.
        after: Option<C>,
    },
}

impl<C> Page<C> {
    /// A REST page, checked: `amount` and `offset` as received, defaults applied.
    pub fn offset(amount: Option<u64>, offset: Option<u64>) -> Result<Self, AppError> {
        let amount = check_size("amount", amount.unwrap_or(DEFAULT_AMOUNT))?;
        let offset = offset.unwrap_or(0);
        if offset > MAX_OFFSET {
            return Err(AppError::invalid(format!(
                "offset: must be between 0 and {MAX_OFFSET}"
            )));
        }
        Ok(Page::Offset { amount, offset })
    }

    /// A GraphQL page, checked: `first` as received (a GraphQL `Int`), default applied.
    pub fn after(first: Option<i32>, after: Option<C>) -> Result<Self, AppError> {
        let first = match first {
            None => DEFAULT_FIRST,
            Some(n) => u64::try_from(n).map_err(|_| size_error("first"))?,
        };
        Ok(Page::After {
            first: check_size("first", first)?,
            after,
        })
    }

    /// How many rows the page holds at most.
    pub fn size(&self) -> u64 {
        match self {
            Page::Offset { amount, .. } => *amount,
            Page::After { first, .. } => *first,
        }
    }
}

fn size_error(field: &str) -> AppError {
    AppError::invalid(format!("{field}: must be between 1 and {MAX_PAGE}"))
}

fn check_size(field: &str, size: u64) -> Result<u64, AppError> {
    if (1..=MAX_PAGE).contains(&size) {
        Ok(size)
    } else {
        Err(size_error(field))
    }
}

/// Splits one row more than a page's size into the page and whether more rows follow.
pub fn split_page<T>(mut rows: Vec<T>, size: u64) -> (Vec<T>, bool) {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let more = rows.len() > size;
    rows.truncate(size);
    (rows, more)
}

/// A cursor's opaque text: base64url of the position's JSON.
pub fn encode_cursor(position: &impl Serialize) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// Parses [`encode_cursor`]'s output; anything else is a 400 naming `after`.
pub fn decode_cursor<T: DeserializeOwned>(text: &str) -> Result<T, AppError> {
    let bad = || AppError::invalid("after: not a cursor returned by this API");
    if text.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let position: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    // A position is ids and names this API wrote; NUL is none of them, and PostgreSQL would
    // refuse it with an error of its own.
    if nul_in_json(&position).is_some() {
        return Err(bad());
    }
    serde_json::from_value(position).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_offsets_are_bounded_where_they_are_parsed() {
        assert!(Page::<()>::offset(None, None).is_ok());
        assert_eq!(
            Page::<()>::offset(None, None).unwrap().size(),
            DEFAULT_AMOUNT
        );
        for bad in [0, MAX_PAGE + 1] {
            let err = Page::<()>::offset(Some(bad), None).unwrap_err().to_string();
            assert!(err.starts_with("amount:"), "{err}");
        }
        let err = Page::<()>::offset(None, Some(u64::MAX))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("offset:"), "{err}");
        assert!(Page::<()>::offset(None, Some(MAX_OFFSET)).is_ok());
        for bad in [-1, 0, 1025, i32::MAX] {
            let err = Page::<()>::after(Some(bad), None).unwrap_err().to_string();
            assert!(err.starts_with("first:"), "{err}");
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let position = ("Zed \"app\"".to_string(), 42i64, "abc".to_string());
        let text = encode_cursor(&position);
        assert_eq!(
            decode_cursor::<(String, i64, String)>(&text).unwrap(),
            position
        );
        assert!(decode_cursor::<(String, i64, String)>("not-a-cursor").is_err());
        let short = URL_SAFE_NO_PAD.encode("[1,2]");
        assert!(decode_cursor::<(String, i64, String)>(&short).is_err());
        assert!(decode_cursor::<(i64,)>(&"A".repeat(2000)).is_err());
    }

    #[test]
    fn one_row_beyond_the_page_means_more_follow() {
        assert_eq!(split_page(vec![1, 2, 3], 2), (vec![1, 2], true));
        assert_eq!(split_page(vec![1, 2], 2), (vec![1, 2], false));
    }
}
