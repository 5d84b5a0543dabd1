//! The development inbox (`email.backend = "inbox"`): the last messages, kept in memory and
//! shown at `/_inbox/` with clickable links, so trying Tessera needs no mail server and no
//! digging through quoted-printable. Every message holds live links, so `config` refuses this
//! backend unless the server listens on a loopback address.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::Rendered;

/// How many messages the inbox keeps; older ones leave as new ones arrive.
pub const CAPACITY: usize = 100;

/// One delivered message (its bodies stay out of `Debug`, as `Rendered`'s do).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Delivered {
    pub id: u64,
    pub at: DateTime<Utc>,
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub message: Rendered,
}

/// The messages, newest last. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Inbox(Arc<Mutex<Messages>>);

#[derive(Default)]
struct Messages {
    next_id: u64,
    kept: VecDeque<Delivered>,
}

impl Inbox {
    pub fn deliver(&self, from: &str, to: &str, message: &Rendered) {
        let mut messages = self.lock();
        messages.next_id += 1;
        let delivered = Delivered {
            id: messages.next_id,
            at: Utc::now(),
            from: from.to_owned(),
            to: to.to_owned(),
            message: message.clone(),
        };
        if messages.kept.len() == CAPACITY {
            messages.kept.pop_front();
        }
        messages.kept.push_back(delivered);
    }

    /// Newest first.
    pub fn list(&self) -> Vec<Delivered> {
        self.lock().kept.iter().rev().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Delivered> {
        self.lock().kept.iter().find(|m| m.id == id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Messages> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
