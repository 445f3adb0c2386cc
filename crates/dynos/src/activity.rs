//! When each app last had traffic, for Eco sleep: an app is asleep once `sleep_after` has
//! passed since its last request (or since the manager first saw it, or its last change).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

/// Last activity per app. Touched on every routed request: one short lock, no await.
#[derive(Debug)]
pub(crate) struct Activity {
    sleep_after: Option<Duration>,
    last: Mutex<HashMap<Uuid, Instant>>,
}

impl Activity {
    pub fn new(sleep_after: Option<Duration>) -> Activity {
        Activity {
            sleep_after,
            last: Mutex::new(HashMap::new()),
        }
    }

    fn last(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Instant>> {
        self.last.lock().expect("activity lock poisoned")
    }

    /// The app had traffic (or a change) now.
    pub fn touch(&self, app_id: Uuid) {
        self.last().insert(app_id, Instant::now());
    }

    /// Whether `sleep_after` has passed since the app's last activity. An app seen for the
    /// first time counts as active now.
    pub fn asleep(&self, app_id: Uuid) -> bool {
        let Some(after) = self.sleep_after else {
            return false;
        };
        let now = Instant::now();
        let last = *self.last().entry(app_id).or_insert(now);
        now.duration_since(last) >= after
    }

    /// The earliest moment an app that is awake now falls asleep.
    pub fn next_sleep(&self) -> Option<Instant> {
        let after = self.sleep_after?;
        let now = Instant::now();
        self.last()
            .values()
            .map(|last| *last + after)
            .filter(|at| *at > now)
            .min()
    }

    /// Forgets apps that `keep` rejects (deleted ones).
    pub fn retain(&self, keep: impl Fn(&Uuid) -> bool) {
        self.last().retain(|app_id, _| keep(app_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleeps_after_quiet_and_wakes_on_touch() {
        let activity = Activity::new(Some(Duration::from_secs(60)));
        let app = Uuid::from_u128(1);
        assert!(!activity.asleep(app), "first seen counts as active");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(!activity.asleep(app));
        let due = activity.next_sleep().expect("falls asleep later");
        assert_eq!(due - Instant::now(), Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(activity.asleep(app));
        assert_eq!(activity.next_sleep(), None, "already asleep");
        activity.touch(app);
        assert!(!activity.asleep(app));
        activity.retain(|_| false);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert!(!activity.asleep(app), "forgotten, then seen anew");
    }

    #[test]
    fn never_sleeps_when_off() {
        let activity = Activity::new(None);
        assert!(!activity.asleep(Uuid::from_u128(1)));
        assert_eq!(activity.next_sleep(), None);
    }
}
