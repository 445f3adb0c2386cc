//! What each resource is busy with, in this process: a destroy waits for a capture, two
//! captures do not overlap, a reset or restore does not swap the database under a capture.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::{Refused, Resource};

/// The busy resources.
#[derive(Default)]
pub(super) struct Busy(Mutex<HashMap<Uuid, Activity>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Activity {
    Capturing,
    Restoring,
    Resetting,
    Destroying,
}

impl Activity {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Activity::Capturing => "a backup is being captured",
            Activity::Restoring => "a backup is being restored",
            Activity::Resetting => "the database is being reset",
            Activity::Destroying => "the add-on is being destroyed",
        }
    }
}

/// Keeps a resource busy until dropped.
pub(super) struct BusyGuard<'a> {
    busy: &'a Busy,
    id: Uuid,
}

impl Busy {
    /// Marks `resource` busy with `activity`, or refuses `what` while it is busy already.
    pub(super) fn claim(
        &self,
        resource: Resource,
        activity: Activity,
        what: &str,
    ) -> Result<BusyGuard<'_>, Refused> {
        let mut busy = lock(&self.0);
        if let Some(current) = busy.get(&resource.id) {
            return Err(Refused(format!(
                "cannot {what} now: {}; try again when it finishes",
                current.describe()
            )));
        }
        busy.insert(resource.id, activity);
        Ok(BusyGuard {
            busy: self,
            id: resource.id,
        })
    }

    /// What `resource` is busy with now.
    pub(super) fn activity(&self, resource: Resource) -> Option<Activity> {
        lock(&self.0).get(&resource.id).copied()
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        lock(&self.busy.0).remove(&self.id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_resource_refuses_what_would_interfere() {
        let busy = Busy::default();
        let resource = Resource { id: Uuid::new_v4() };
        let guard = busy
            .claim(resource, Activity::Capturing, "capture a backup")
            .unwrap();
        assert_eq!(busy.activity(resource), Some(Activity::Capturing));
        let refused = busy
            .claim(resource, Activity::Destroying, "destroy the add-on")
            .err()
            .unwrap();
        assert_eq!(
            refused.0,
            "cannot destroy the add-on now: a backup is being captured; try again when it finishes"
        );
        drop(guard);
        assert_eq!(busy.activity(resource), None);
        assert!(busy
            .claim(resource, Activity::Destroying, "destroy the add-on")
            .is_ok());
    }
}
