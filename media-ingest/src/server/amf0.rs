//! How deeply an AMF0 payload nests, measured without recursion, the way rml_amf0 would parse
//! it. rml_amf0 parses recursively, one stack frame per level: a command nesting objects a
//! million deep (4 bytes a level) overflows a thread's stack, which aborts the whole process,
//! beyond any `catch_unwind`. The framing guard measures every AMF0 message first.

const NUMBER: u8 = 0;
const BOOLEAN: u8 = 1;
const STRING: u8 = 2;
const OBJECT: u8 = 3;
const NULL: u8 = 5;
const UNDEFINED: u8 = 6;
const ECMA_ARRAY: u8 = 8;
const OBJECT_END: u8 = 9;
const STRICT_ARRAY: u8 = 10;

enum Container {
    /// An object or ECMA array: properties until an empty name and the end marker.
    Object,
    /// A strict array with this many values still to read.
    Array(u32),
}

struct Cursor<'a> {
    bytes: &'a [u8],
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(*first)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes = self.bytes.get(n..)?;
        Some(())
    }

    fn u16(&mut self) -> Option<usize> {
        Some(usize::from(self.byte()?) << 8 | usize::from(self.byte()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes([
            self.byte()?,
            self.byte()?,
            self.byte()?,
            self.byte()?,
        ]))
    }
}

/// The deepest container nesting in `payload`, read as rml_amf0 reads a message (a sequence of
/// values). Scanning stops where rml_amf0 would stop with an error or the end of its input,
/// and as soon as the depth passes `limit`.
pub(crate) fn depth(payload: &[u8], limit: usize) -> usize {
    let mut cursor = Cursor { bytes: payload };
    let mut stack: Vec<Container> = Vec::new();
    let mut deepest = 0;
    loop {
        // Where the next value comes from, and whether there is one.
        let marker = match stack.last_mut() {
            None => match cursor.byte() {
                None | Some(OBJECT_END) => return deepest,
                Some(marker) => marker,
            },
            Some(Container::Object) => {
                let Some(name) = cursor.u16() else {
                    return deepest;
                };
                if name == 0 {
                    // The end of the object: the end marker must follow.
                    if cursor.byte() != Some(OBJECT_END) {
                        return deepest;
                    }
                    stack.pop();
                    continue;
                }
                if cursor.skip(name).is_none() {
                    return deepest;
                }
                match cursor.byte() {
                    // A property without a value is an error to rml_amf0.
                    None | Some(OBJECT_END) => return deepest,
                    Some(marker) => marker,
                }
            }
            Some(Container::Array(remaining)) => {
                if *remaining == 0 {
                    stack.pop();
                    continue;
                }
                *remaining -= 1;
                match cursor.byte() {
                    None | Some(OBJECT_END) => {
                        stack.pop();
                        continue;
                    }
                    Some(marker) => marker,
                }
            }
        };
        let parsed = match marker {
            NUMBER => cursor.skip(8),
            BOOLEAN => cursor.skip(1),
            STRING => cursor.u16().and_then(|length| cursor.skip(length)),
            NULL | UNDEFINED => Some(()),
            OBJECT => {
                stack.push(Container::Object);
                Some(())
            }
            ECMA_ARRAY => cursor.u32().map(|_| stack.push(Container::Object)),
            STRICT_ARRAY => cursor
                .u32()
                .map(|count| stack.push(Container::Array(count))),
            // rml_amf0 knows no other marker: it stops with an error.
            _ => None,
        };
        if parsed.is_none() {
            return deepest;
        }
        deepest = deepest.max(stack.len());
        if deepest > limit {
            return deepest;
        }
    }
}

#[cfg(test)]
mod tests_amf0 {
    use super::*;

    #[test]
    fn an_ordinary_connect_command_is_shallow() {
        // "connect", 1.0, { app: "live", tcUrl: "rtmp://h/live" }, plus a nested object.
        let mut payload = vec![STRING, 0, 7];
        payload.extend_from_slice(b"connect");
        payload.extend_from_slice(&[NUMBER, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, OBJECT, 0, 3]);
        payload.extend_from_slice(b"app");
        payload.extend_from_slice(&[STRING, 0, 4]);
        payload.extend_from_slice(b"live");
        payload.extend_from_slice(&[0, 5]);
        payload.extend_from_slice(b"inner");
        payload.extend_from_slice(&[OBJECT, 0, 0, OBJECT_END, 0, 0, OBJECT_END, NULL]);
        assert_eq!(depth(&payload, 32), 2);
    }

    #[test]
    fn deep_nesting_is_measured_without_recursion() {
        let mut payload = vec![OBJECT];
        for _ in 0..1_000_000 {
            payload.extend_from_slice(&[0, 1, b'a', OBJECT]);
        }
        assert_eq!(
            depth(&payload, 32),
            33,
            "scanning stops just past the limit"
        );
        assert_eq!(
            depth(&payload, usize::MAX),
            1_000_001,
            "and measures it all without a stack overflow"
        );
    }

    #[test]
    fn arrays_and_ecma_arrays_nest_too() {
        let payload = [
            STRICT_ARRAY,
            0,
            0,
            0,
            2,
            ECMA_ARRAY,
            0,
            0,
            0,
            1,
            0,
            1,
            b'x',
            NUMBER,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            OBJECT_END,
            NULL,
        ];
        assert_eq!(depth(&payload, 32), 2);
        assert_eq!(
            depth(&[STRICT_ARRAY, 0, 0, 0, 5, NULL], 32),
            1,
            "a short array ends with its input"
        );
    }

    #[test]
    fn malformed_input_ends_the_scan_where_rml_amf0_stops() {
        assert_eq!(depth(&[], 32), 0);
        assert_eq!(
            depth(&[4, OBJECT, OBJECT], 32),
            0,
            "an unknown marker first"
        );
        assert_eq!(
            depth(&[OBJECT, 0, 9, b'x'], 32),
            1,
            "a name longer than the input"
        );
        assert_eq!(depth(&[OBJECT, 0, 0, 7], 32), 1, "a bad end marker");
    }
}
