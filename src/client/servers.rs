//! Server routes: the servers working on the database, and forgetting one that is gone.

use super::{Client, segment};
use crate::service::{Error, Forgotten, ServerView};

impl Client {
    /// `GET /servers`.
    pub async fn servers(&self) -> Result<Vec<ServerView>, Error> {
        let answer = self.get("/servers").await?;
        serde_json::from_value(answer)
            .map_err(|e| Error::internal(format!("GET /servers answered no server list: {e}")))
    }

    /// `DELETE /servers/:id`.
    pub async fn forget_server(&self, id: &str) -> Result<Forgotten, Error> {
        let path = format!("/servers/{}", segment(id));
        let answer = self.delete(&path).await?;
        serde_json::from_value(answer).map_err(|e| Error::internal(format!("DELETE {path} answered no report: {e}")))
    }
}
