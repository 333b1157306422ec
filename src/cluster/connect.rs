//! Connections to the shared Redis, and the pause between attempts while it is away.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use super::address::RedisAddress;

/// A connection attempt gives up after this long (an address that drops packets).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// First and longest pause between attempts to reach Redis.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Opens a connection; `response_timeout` bounds each command (none for a blocking read).
pub async fn connect(
    address: &RedisAddress,
    response_timeout: Option<Duration>,
) -> redis::RedisResult<MultiplexedConnection> {
    let mut settings = RedisConnectionInfo::default().set_db(address.db);
    if let Some(username) = &address.username {
        settings = settings.set_username(username);
    }
    if let Some(password) = &address.password {
        settings = settings.set_password(password);
    }
    let info = ConnectionAddr::Tcp(address.host.clone(), address.port)
        .into_connection_info()?
        .set_redis_settings(settings);
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(response_timeout);
    redis::Client::open(info)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Pauses that double from 100 ms to 5 s while Redis stays away.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff { next: FIRST_PAUSE }
    }

    /// The pause before the next attempt, and a longer one after that.
    pub fn pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(LONGEST_PAUSE);
        pause
    }

    /// Redis answered: the next outage starts with a short pause again.
    pub fn reset(&mut self) {
        self.next = FIRST_PAUSE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_ceiling() {
        let mut backoff = Backoff::new();
        let pauses: Vec<u128> = (0..8).map(|_| backoff.pause().as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.pause(), FIRST_PAUSE);
    }
}
