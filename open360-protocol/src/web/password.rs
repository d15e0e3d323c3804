//! Passwords, hashed with argon2id (the original salted SHA-256) and checked in constant time
//! by argon2 itself.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use rand::RngCore;

/// The PHC string of `password`'s argon2id hash, with a fresh 16-byte salt from `rand`'s CSPRNG.
pub(crate) fn hash(password: &str) -> Result<String, String> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|error| format!("a salt: {error}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| format!("hashing a password: {error}"))
}

/// Whether `password` matches the PHC string `hash`. A malformed hash matches nothing.
pub(crate) fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hash_admits_its_password_only() {
        let hash = super::hash("correct horse").expect("hashed");
        assert!(hash.starts_with("$argon2id$"));
        assert!(super::verify("correct horse", &hash));
        assert!(!super::verify("correct horsE", &hash));
        assert!(!super::verify("correct horse", "not a hash"));
        assert_ne!(
            super::hash("correct horse").expect("hashed"),
            hash,
            "salted"
        );
    }
}
