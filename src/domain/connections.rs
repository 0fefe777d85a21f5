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

/// A position in the "most recently used first" order of a user's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionCursor {
    /// Access time of the last row seen.
    pub access_time: i64,
    /// Its client id (breaks ties).
    pub client_id: String,
}

impl ConnectionCursor {
    /// The cursor of `connection`.
    pub fn of(connection: &Connection) -> Self {
        Self {
            access_time: connection.access_time,
            client_id: connection.client_id.clone(),
        }
    }

    /// Opaque text form: base64url of a JSON array.
    pub fn encode(&self) -> String {
        use base64::Engine;
        let json = serde_json::json!([self.access_time, self.client_id]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    }

    /// Parses [`ConnectionCursor::encode`]'s output; anything else is a 400 naming `after`.
    pub fn decode(text: &str) -> Result<Self, crate::error::AppError> {
        use base64::Engine;
        let bad = || crate::error::AppError::invalid("after: not a cursor returned by this API");
        if text.len() > 1024 {
            return Err(bad());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad())?;
        let (access_time, client_id): (i64, String) =
            serde_json::from_slice(&bytes).map_err(|_| bad())?;
        Ok(Self {
            access_time,
            client_id,
        })
    }
}
