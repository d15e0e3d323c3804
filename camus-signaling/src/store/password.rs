//! Room passwords: argon2id hashes in PHC string form, checked in constant time.
//!
//! Cost: argon2's default parameters (argon2id, 19 MiB of memory, 2 passes, 1 lane: the OWASP
//! recommendation), tens of milliseconds of one core per hash or check in a release build and
//! around a second in an unoptimised one. Both functions block: in async code call them in
//! `tokio::task::spawn_blocking`. The parameters travel in each hash, so hashes made with
//! other parameters (stronger ones later) keep verifying.

use argon2::{
    Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _, password_hash::SaltString,
};

/// Salt length in bytes (the PHC string format's recommendation).
const SALT_BYTES: usize = 16;

/// The argon2id hash of `password`, with a fresh random salt from a CSPRNG (the thread-local
/// generator of `rand`, seeded from the operating system), as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`): what [`StoredRoom::password_hash`]
/// holds. Two hashes of one password differ (their salts do).
///
/// [`StoredRoom::password_hash`]: super::StoredRoom::password_hash
pub fn hash_password(password: &str) -> String {
    use rand::RngCore as _;
    let mut salt = [0_u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .expect("16 bytes are within the PHC salt length limits (4 to 48 bytes)");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2's default parameters and a valid salt hash any password of < 4 GiB")
        .to_string()
}

/// Whether `candidate` is the password `hash` (a PHC string from [`hash_password`]) was made
/// from. The comparison is argon2's, in constant time; a hash that is not a valid argon2 PHC
/// string matches nothing.
pub fn verify_password(hash: &str, candidate: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod hashing {
    use super::*;

    #[test]
    fn the_right_password_matches_and_a_wrong_one_does_not() {
        let hash = hash_password("wyld stallyns");
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(!hash.contains("wyld stallyns"));
        assert!(verify_password(&hash, "wyld stallyns"));
        assert!(!verify_password(&hash, "wyld stallyn"));
        assert!(!verify_password(&hash, ""));
    }

    #[test]
    fn two_hashes_of_one_password_differ_and_both_verify() {
        let first = hash_password("san dimas");
        let second = hash_password("san dimas");
        assert_ne!(first, second);
        assert!(verify_password(&first, "san dimas"));
        assert!(verify_password(&second, "san dimas"));
    }

    #[test]
    fn an_empty_password_is_a_password_like_any_other() {
        let hash = hash_password("");
        assert!(verify_password(&hash, ""));
        assert!(!verify_password(&hash, " "));
    }

    #[test]
    fn something_that_is_not_a_hash_matches_nothing() {
        for not_a_hash in [
            "",
            "plaintext",
            "$argon2id$v=19$garbage",
            "$2b$12$bcryptish",
        ] {
            assert!(!verify_password(not_a_hash, not_a_hash), "{not_a_hash:?}");
            assert!(!verify_password(not_a_hash, ""), "{not_a_hash:?}");
        }
    }
}
