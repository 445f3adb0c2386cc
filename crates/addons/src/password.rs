//! Random credentials.

use rand::distributions::Alphanumeric;
use rand::Rng;

/// Length of generated passwords: 32 alphanumerics, about 190 bits.
const PASSWORD_LENGTH: usize = 32;

/// A strong random password of letters and digits (safe in URLs without escaping).
pub fn random_password() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(PASSWORD_LENGTH)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_alphanumeric_and_different() {
        let a = random_password();
        let b = random_password();
        assert_eq!(a.len(), PASSWORD_LENGTH);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
