//! The operator's side of the CRM: migrations, tenants, development tokens, seed data and the native
//! server that hosts every component's routes for machines without Spin and for the tests.

pub mod audit;
pub mod dispatcher;
pub mod jobs;
pub mod maintain;
pub mod migrate;
pub mod search_indexes;
pub mod seed;
pub mod server;
pub mod tenants;
pub mod transfer;

/// Connects to PostgreSQL with a one-line error that names the host, never the password.
pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| anyhow::anyhow!("the database URL is not valid: {e}"))?;
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(host) => host.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let mut cause = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            cause = format!("{cause}: {inner}");
            source = inner.source();
        }
        anyhow::anyhow!(
            "cannot connect to PostgreSQL at {}: {cause}",
            hosts.join(",")
        )
    })?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(error = %error, "database connection closed");
        }
    });
    Ok(client)
}
