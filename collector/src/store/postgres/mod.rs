//! The PostgreSQL backend, for collectors that outgrow one embedded store (issue 17, being
//! built): what it stands on so far is the connection settings and pool, TLS, and the schema,
//! each tested against a real server. It joins the store interface once it does everything the
//! embedded store does.

mod connect;
mod schema;

use deadpool_postgres::Pool;

pub use connect::DatabaseSettings;
pub use schema::SCHEMA_VERSION;

use crate::error::Result;

/// A connection pool to a migrated database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Connects to the database `settings` name, and migrates it.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self> {
        let pool = settings.pool()?;
        let mut client = pool.get().await.map_err(|e| {
            settings.open_error(
                "cannot connect",
                Some(Box::new(e) as crate::error::BoxError),
            )
        })?;
        schema::migrate(&mut client, settings).await?;
        drop(client);
        Ok(PostgresStore { pool })
    }

    /// The schema version the database is at (the last migration applied).
    pub async fn schema_version(&self) -> Result<i64> {
        let client = self.pool.get().await.map_err(query_error)?;
        let row = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::bigint FROM refinery_schema_history",
                &[],
            )
            .await
            .map_err(query_error)?;
        Ok(row.get(0))
    }

    /// Closes every connection.
    pub fn close(&self) {
        self.pool.close();
    }
}

/// A failed query, as the store interface reports it.
fn query_error(error: impl std::error::Error + Send + Sync + 'static) -> crate::error::Error {
    crate::error::Error::Query(Box::new(error))
}
