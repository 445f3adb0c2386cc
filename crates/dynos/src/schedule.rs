//! The restart schedule of crashed dynos: the first restart at once, then a cool-off that
//! doubles with each further crash, up to 20 minutes (as Heroku does). A new release, a manual
//! restart, or a run longer than the longest cool-off starts the count again.

use std::time::Duration;

/// The cool-off before the second restart; it doubles for each crash after that.
pub const COOL_OFF_BASE: Duration = Duration::from_secs(20);
/// The longest cool-off.
pub const COOL_OFF_MAX: Duration = Duration::from_secs(20 * 60);

/// How long to wait before restarting a dyno after its `crashes`-th crash in a row: zero for
/// the first, then 20 s, 40 s, 80 s, ... up to [`COOL_OFF_MAX`].
pub fn restart_delay(crashes: u32) -> Duration {
    if crashes <= 1 {
        return Duration::ZERO;
    }
    // 2^6 * 20 s is past the cap already; keep the shift small.
    let doublings = (crashes - 2).min(10);
    COOL_OFF_BASE
        .saturating_mul(1u32 << doublings)
        .min(COOL_OFF_MAX)
}

/// The crash count after a dyno that had crashed `previous` times in a row crashes again after
/// running for `ran_for`: a dyno that stayed up for [`COOL_OFF_MAX`] or longer starts over.
pub fn crashes_after_exit(previous: u32, ran_for: Duration) -> u32 {
    if ran_for >= COOL_OFF_MAX {
        1
    } else {
        previous.saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(crashes: u32, expected_secs: u64) {
        assert_eq!(
            restart_delay(crashes),
            Duration::from_secs(expected_secs),
            "after crash {crashes}"
        );
    }

    #[test]
    fn first_restart_at_once_then_doubling_to_twenty_minutes() {
        check(0, 0);
        check(1, 0);
        check(2, 20);
        check(3, 40);
        check(4, 80);
        check(7, 640);
        check(8, 1200);
        check(9, 1200);
        check(u32::MAX, 1200);
    }

    #[test]
    fn a_long_run_resets_the_count() {
        assert_eq!(crashes_after_exit(0, Duration::from_secs(1)), 1);
        assert_eq!(crashes_after_exit(5, Duration::from_secs(60)), 6);
        assert_eq!(crashes_after_exit(5, COOL_OFF_MAX), 1);
        assert_eq!(crashes_after_exit(u32::MAX, Duration::ZERO), u32::MAX);
    }
}
