//! Client ids (the addresses of the protocol) and connection ids (one per WebSocket).

use std::fmt;

/// A client's id and address: 32 lowercase hex characters, 128 bits from a CSPRNG.
///
/// Its order is the order of the text, which the browser client uses to decide which of two
/// peers is "polite" (`id < peer.id`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId([u8; 32]);

impl ClientId {
    /// Reads an id (from a cookie, a `receiver`…): `None` unless exactly 32 lowercase hex
    /// characters.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            .then_some(Self(bytes))
    }

    /// The id written as hex.
    pub(crate) fn from_random(random: [u8; 16]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0; 32];
        for (pair, byte) in text.chunks_exact_mut(2).zip(random) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        Self(text)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a client id holds ASCII hex only")
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.as_str())
    }
}

/// One WebSocket of a client, returned by
/// [`RoomRegistry::connect`](super::RoomRegistry::connect). A client that reconnects gets a
/// new one, so the late close of its previous socket cannot mark the new one as dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub(crate) u64);

/// The default source of ids: the thread-local CSPRNG of `rand` (ChaCha, seeded and reseeded
/// from the operating system).
pub(crate) fn random_bytes(buffer: &mut [u8]) {
    use rand::RngCore as _;
    rand::rng().fill_bytes(buffer);
}

#[cfg(test)]
mod format {
    use super::*;

    #[test]
    fn ids_are_32_lowercase_hex_characters() {
        let id = ClientId::from_random([
            0xd8, 0x6f, 0x59, 0x59, 0xc0, 0x8d, 0x48, 0xff, 0xb2, 0x44, 0xff, 0xd5, 0xe6, 0x21,
            0x87, 0x1e,
        ]);
        assert_eq!(id.as_str(), "d86f5959c08d48ffb244ffd5e621871e");
        assert_eq!(id.to_string(), "d86f5959c08d48ffb244ffd5e621871e");
        assert_eq!(
            format!("{id:?}"),
            "ClientId(d86f5959c08d48ffb244ffd5e621871e)"
        );
        assert_eq!(ClientId::parse(id.as_str()), Some(id));

        let mut buffer = [0; 16];
        random_bytes(&mut buffer);
        let random = ClientId::from_random(buffer);
        assert_eq!(ClientId::parse(random.as_str()), Some(random));
    }

    #[test]
    fn anything_else_is_not_an_id() {
        for text in [
            "",
            "ground control",
            "room",
            "D86F5959C08D48FFB244FFD5E621871E",
            "d86f5959c08d48ffb244ffd5e621871",
            "d86f5959c08d48ffb244ffd5e621871e0",
            "d86f5959-08d48ffb244ffd5e621871e",
            "g86f5959c08d48ffb244ffd5e621871e",
            "d86f5959c08d48ffb244ffd5e62187é",
        ] {
            assert_eq!(ClientId::parse(text), None, "{text}");
        }
    }

    #[test]
    fn ids_order_as_their_text() {
        let low = ClientId::parse("0fffffffffffffffffffffffffffffff").expect("an id");
        let high = ClientId::parse("a0000000000000000000000000000000").expect("an id");
        assert!(low < high);
    }
}
