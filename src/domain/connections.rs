//! A user's connection to an app, as the transports see it.

/// The apps a user has granted: never codes, hashes or PKCE data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The app.
    pub client_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Last consent's sign-in time, Unix seconds.
    pub auth_time: i64,
    /// Last token issued (or consent), Unix seconds.
    pub access_time: i64,
    /// First grant, Unix seconds.
    pub creation_time: i64,
}

impl From<&crate::db::entities::connections::Model> for Connection {
    fn from(row: &crate::db::entities::connections::Model) -> Self {
        Self {
            client_id: row.client_id.clone(),
            scope: row.scope.clone(),
            auth_time: row.auth_time,
            access_time: row.access_time,
            creation_time: row.creation_time,
        }
    }
}
