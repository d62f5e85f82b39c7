//! Dashboard logins: random session ids handed out by the login form, kept in memory (by
//! digest, never as given) until they expire, are logged out, or the collector restarts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Logins kept at most; the oldest is forgotten when another logs in.
pub const MAX_SESSIONS: usize = 1_000;

/// The open sessions.
pub struct Sessions {
    ttl: Duration,
    open: Mutex<HashMap<[u8; 32], Instant>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl", &self.ttl)
            .field("open", &self.open.lock().len())
            .finish()
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Sessions that last `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Sessions {
            ttl,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session: its id, 256 random bits in hex, for the cookie.
    pub fn open(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        let now = Instant::now();
        let mut open = self.open.lock();
        open.retain(|_, expires| *expires > now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(digest(&id), now + self.ttl);
        id
    }

    /// Whether `id` is an open, unexpired session.
    pub fn is_open(&self, id: &str) -> bool {
        let key = digest(id);
        let mut open = self.open.lock();
        match open.get(&key) {
            Some(expires) if *expires > Instant::now() => true,
            Some(_) => {
                open.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Ends session `id` (logout).
    pub fn close(&self, id: &str) {
        self.open.lock().remove(&digest(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_open_until_closed_or_expired() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let id = sessions.open();
        assert_eq!(id.len(), 64);
        assert!(sessions.is_open(&id));
        assert!(!sessions.is_open("0".repeat(64).as_str()));
        sessions.close(&id);
        assert!(!sessions.is_open(&id));

        let expired = Sessions::new(Duration::ZERO);
        let id = expired.open();
        assert!(!expired.is_open(&id));
    }

    #[test]
    fn the_oldest_session_gives_way_past_the_bound() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let first = sessions.open();
        let ids: Vec<String> = (1..MAX_SESSIONS).map(|_| sessions.open()).collect();
        assert!(sessions.is_open(&first));
        let last = sessions.open();
        assert!(!sessions.is_open(&first));
        assert!(sessions.is_open(&last) && sessions.is_open(&ids[0]));
    }

    #[test]
    fn debug_output_holds_no_session_id() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let id = sessions.open();
        assert!(!format!("{sessions:?}").contains(&id));
    }
}
