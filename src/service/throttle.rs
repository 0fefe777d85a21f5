//! Sign-in back-off: repeated failed sign-ins for one username or from one address are slowed
//! down, never locked for good.
//!
//! Every attempt is counted *before* the password is checked (a reservation), under the
//! username and under the client's address; a success then takes its reservation back and
//! clears the username. So a burst of concurrent attempts cannot all slip through before the
//! first failure is recorded: each one sees the attempts before it.
//!
//! A username gets [`USER_FREE`] attempts, an address [`ADDRESS_FREE`] (many people may share
//! one address, and spraying one password over many usernames is counted there). After that
//! each new attempt must wait [`BASE_DELAY`] doubled per further attempt, at most
//! [`MAX_DELAY`], counted from the last one. A key is forgotten [`FORGET_AFTER`] after its last
//! attempt, so a real user is never locked out for good.
//!
//! The counts live in the database (`sign_in_attempts`), so every node behind a load balancer
//! counts the same attempts and a restart forgets none. An attempt that must wait is answered
//! from a plain read, writing nothing. Otherwise a reservation is one transaction that makes
//! sure both keys have a row, locks them (in key order, so two reservations never wait on each
//! other in a cycle; on SQLite the first write takes the database's write lock), decides again,
//! and counts. Idle rows are removed by the housekeeping sweep (`service::housekeeping`).

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

use crate::db::entities::sign_in_attempts;

/// Failed attempts allowed for a username before any delay.
pub const USER_FREE: u32 = 3;
/// Failed attempts allowed from an address before any delay.
pub const ADDRESS_FREE: u32 = 10;
/// The first delay; it doubles with every further failure.
pub const BASE_DELAY: Duration = Duration::from_secs(1);
/// The longest delay ever asked for.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// How long a key's failures are remembered after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// What an attempt is counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    /// A username, lower-cased.
    User(String),
    /// A client address.
    Address(IpAddr),
}

impl Key {
    fn free(&self) -> u32 {
        match self {
            Key::User(_) => USER_FREE,
            Key::Address(_) => ADDRESS_FREE,
        }
    }

    /// The key's row id.
    fn id(&self) -> String {
        match self {
            Key::User(name) => format!("user:{name}"),
            Key::Address(addr) => format!("addr:{addr}"),
        }
    }
}

/// An attempt counted before its password was checked; settle it with [`succeeded`], or drop
/// it to let it stand as a failure.
#[derive(Debug)]
#[must_use]
pub struct Reservation {
    keys: Vec<Key>,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The delay owed after `count` attempts under a key allowing `free`.
fn delay_after(count: u32, free: u32) -> Duration {
    if count < free {
        return Duration::ZERO;
    }
    let doublings = (count - free).min(16);
    (BASE_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

/// How long an attempt at `now` must still wait, given each key's row (count, last attempt).
/// A key within its free attempts owes nothing, and a last attempt stamped ahead of `now` (by
/// another node's clock) counts as made now.
fn wait_at(rows: &[(&Key, u32, i64)], now: i64) -> Option<Duration> {
    let forget = millis(FORGET_AFTER);
    rows.iter()
        .filter(|(_, _, last)| now - last < forget)
        .filter_map(|(key, count, last)| {
            let delay = delay_after(*count, key.free());
            (!delay.is_zero()).then(|| (*last).min(now) + millis(delay) - now)
        })
        .max()
        .filter(|left| *left > 0)
        .map(|left| Duration::from_millis(u64::try_from(left).unwrap_or(0)))
}

/// Each key with its stored count and last attempt (none yet: 0, `now`).
fn counts<'k>(
    keys: &'k [Key],
    rows: &[sign_in_attempts::Model],
    now: i64,
) -> Vec<(&'k Key, u32, i64)> {
    keys.iter()
        .map(|key| {
            let id = key.id();
            rows.iter()
                .find(|row| row.key == id)
                .map_or((key, 0, now), |row| {
                    (key, u32::try_from(row.count).unwrap_or(0), row.last_at)
                })
        })
        .collect()
}

/// Counts an attempt for `username` from `addr` at `now` (Unix milliseconds), or says how long
/// it must still wait (and counts nothing).
pub async fn reserve(
    db: &DatabaseConnection,
    username: &str,
    addr: Option<IpAddr>,
    now: i64,
) -> Result<Result<Reservation, Duration>, DbErr> {
    let mut keys = vec![Key::User(username.to_lowercase())];
    keys.extend(addr.map(|addr| Key::Address(network(addr))));
    let mut ids: Vec<String> = keys.iter().map(Key::id).collect();
    ids.sort();
    let of_keys = || sign_in_attempts::Column::Key.is_in(ids.clone());
    // A plain read first: an attempt that must wait is answered without writing anything.
    let seen = sign_in_attempts::Entity::find()
        .filter(of_keys())
        .all(db)
        .await?;
    if let Some(wait) = wait_at(&counts(&keys, &seen, now), now) {
        return Ok(Err(wait));
    }
    let txn = db.begin().await?;
    for id in &ids {
        sign_in_attempts::Entity::insert(sign_in_attempts::ActiveModel {
            key: Set(id.clone()),
            count: Set(0),
            last_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(sign_in_attempts::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    }
    let rows = sign_in_attempts::Entity::find()
        .filter(of_keys())
        .order_by_asc(sign_in_attempts::Column::Key)
        .lock_exclusive()
        .all(&txn)
        .await?;
    let counted = counts(&keys, &rows, now);
    if let Some(wait) = wait_at(&counted, now) {
        txn.rollback().await?;
        return Ok(Err(wait));
    }
    let forget = millis(FORGET_AFTER);
    for (key, count, last) in counted {
        let count = if now - last >= forget {
            1
        } else {
            count.saturating_add(1)
        };
        // An upsert: the row may have been swept (idle) since it was locked.
        sign_in_attempts::Entity::insert(sign_in_attempts::ActiveModel {
            key: Set(key.id()),
            count: Set(i32::try_from(count).unwrap_or(i32::MAX)),
            last_at: Set(last.max(now)),
        })
        .on_conflict(
            OnConflict::column(sign_in_attempts::Column::Key)
                .update_columns([
                    sign_in_attempts::Column::Count,
                    sign_in_attempts::Column::LastAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(Ok(Reservation { keys }))
}

/// What an address is counted under: itself for IPv4, its /64 network for IPv6 (one host
/// usually holds a whole /64, and could otherwise pick a fresh address per attempt). An
/// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a dual-stack listener on `[::]` sees IPv4
/// clients) is the IPv4 address it maps: as a /64 it would put every IPv4 client in one count.
fn network(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        addr @ IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

/// The password was right: the username's count is cleared, and the address gets this attempt
/// back (its earlier failures stand, so one working account cannot reset an address that is
/// guessing others).
pub async fn succeeded(db: &DatabaseConnection, reservation: Reservation) -> Result<(), DbErr> {
    use sea_orm::sea_query::ExprTrait;
    for key in reservation.keys {
        let row = sign_in_attempts::Column::Key.eq(key.id());
        match key {
            Key::User(_) => {
                sign_in_attempts::Entity::delete_many()
                    .filter(row)
                    .exec(db)
                    .await?;
            }
            Key::Address(_) => {
                sign_in_attempts::Entity::update_many()
                    .col_expr(
                        sign_in_attempts::Column::Count,
                        Expr::col(sign_in_attempts::Column::Count).sub(1),
                    )
                    .filter(row)
                    .filter(sign_in_attempts::Column::Count.gt(0))
                    .exec(db)
                    .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn user() -> Key {
        Key::User("alice".into())
    }

    #[test]
    fn addresses_count_per_ipv4_host_and_per_ipv6_network() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let other_mapped: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        assert_eq!(network(mapped), v4);
        assert_ne!(network(mapped), network(other_mapped));
        let v6: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(network(v6), network(same_net));
        assert_eq!(network(v6), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_first_failures_cost_nothing_and_the_next_attempt_waits() {
        let key = user();
        assert_eq!(wait_at(&[(&key, USER_FREE - 1, T0)], T0), None);
        assert_eq!(wait_at(&[(&key, USER_FREE, T0)], T0), Some(BASE_DELAY));
    }

    #[test]
    fn delays_double_count_from_the_last_attempt_and_stop_at_the_cap() {
        let key = user();
        assert_eq!(
            wait_at(&[(&key, USER_FREE + 1, T0)], T0 + 500),
            Some(BASE_DELAY * 2 - Duration::from_millis(500))
        );
        assert_eq!(wait_at(&[(&key, USER_FREE + 40, T0)], T0), Some(MAX_DELAY));
        assert_eq!(
            wait_at(&[(&key, USER_FREE + 40, T0)], T0 + millis(MAX_DELAY)),
            None
        );
    }

    #[test]
    fn the_key_is_forgotten_long_after_the_last_attempt() {
        let key = user();
        let much_later = T0 + millis(FORGET_AFTER);
        assert_eq!(wait_at(&[(&key, 1_000, T0)], much_later), None);
    }

    #[test]
    fn a_key_within_its_allowance_owes_nothing_even_stamped_by_a_clock_ahead() {
        let key = user();
        assert_eq!(wait_at(&[(&key, USER_FREE - 1, T0 + 5_000)], T0), None);
        assert_eq!(
            wait_at(&[(&key, USER_FREE, T0 + 5_000)], T0),
            Some(BASE_DELAY),
            "a last attempt ahead of now counts as made now"
        );
    }

    #[test]
    fn an_ipv6_address_is_counted_by_its_64_network() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:bbbb::7".parse().unwrap();
        assert_eq!(network(one), network(other));
        assert_eq!(Key::Address(network(one)).id(), "addr:2001:db8:1:2::");
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(network(v4), v4);
    }

    #[test]
    fn the_longest_wait_of_the_two_keys_applies() {
        let (name, addr) = (user(), Key::Address("192.0.2.7".parse().unwrap()));
        let rows = [(&name, 0, T0), (&addr, ADDRESS_FREE + 2, T0)];
        assert_eq!(wait_at(&rows, T0), Some(BASE_DELAY * 4));
        assert_eq!(name.id(), "user:alice");
        assert_eq!(addr.id(), "addr:192.0.2.7");
    }
}
