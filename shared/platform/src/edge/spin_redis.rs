//! Spin's outbound Redis, one connection per instance: each open is a new TCP connection and
//! handshake, which would otherwise cost every request that publishes a wake-up or counts a rate
//! limit. A command that fails (Redis restarted, the connection dropped) is sent once more on a
//! connection opened again.

use spin_sdk::redis::{Connection, Error};
use std::rc::Rc;

thread_local! {
    static CONNECTION: std::cell::RefCell<Option<Rc<Connection>>> =
        const { std::cell::RefCell::new(None) };
}

async fn connection(url: &str) -> Result<Rc<Connection>, Error> {
    if let Some(connection) = CONNECTION.with(|cell| cell.borrow().clone()) {
        return Ok(connection);
    }
    let connection = Rc::new(Connection::open(url).await?);
    CONNECTION.with(|cell| *cell.borrow_mut() = Some(connection.clone()));
    Ok(connection)
}

/// Runs `command` on the instance's connection to `url`, metered as one key-value round trip.
pub async fn run<T>(
    url: &str,
    command: impl AsyncFn(&Connection) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut outcome = Err(Error::Other("not attempted".into()));
    for _attempt in 0..2 {
        outcome = match connection(url).await {
            Ok(connection) => crate::metering::kv_async(command(&connection)).await,
            Err(error) => Err(error),
        };
        if outcome.is_ok() {
            return outcome;
        }
        CONNECTION.with(|cell| *cell.borrow_mut() = None);
    }
    outcome
}
