//! A user's connection to an app, as the transports see it.

use serde::{Deserialize, Serialize};

use super::ids::ClientId;

/// The apps a user has granted: never codes, hashes or PKCE data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The app.
    pub client_id: ClientId,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Last consent's sign-in time, Unix seconds.
    pub auth_time: i64,
    /// Last token issued (or consent), Unix seconds, to the minute.
    pub access_time: i64,
    /// First grant, Unix seconds.
    pub creation_time: i64,
}

/// A position in the "most recently used first" order of a user's connections: access time,
/// then client id (which breaks ties). Serialised as a JSON array, the text of its cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCursor(pub i64, pub ClientId);

impl ConnectionCursor {
    /// The cursor of `connection`.
    pub fn of(connection: &Connection) -> Self {
        Self(connection.access_time, connection.client_id.clone())
    }
}
