//! The D-Bus wire facts both of outset's servers (init's control socket
//! and outset-cgmanager) check before zbus reads a message: the fixed
//! header and the length it claims, so that a claim over the limit closes
//! the connection before anything is reserved for it.

/// The fixed part of every D-Bus message header: endianness, type,
/// flags, version, body length, serial, then the length of the
/// header-fields array.
pub const FIXED_HEADER: usize = 16;

/// The whole length a message's fixed header announces: header, its
/// fields, padding and body (`None` if it is no D-Bus header).
pub fn claimed_length(fixed: &[u8]) -> Option<u64> {
    let word = |at: usize| -> Option<u32> {
        let bytes: [u8; 4] = fixed.get(at..at + 4)?.try_into().ok()?;
        match fixed.first()? {
            b'l' => Some(u32::from_le_bytes(bytes)),
            b'B' => Some(u32::from_be_bytes(bytes)),
            _ => None,
        }
    };
    let body = u64::from(word(4)?);
    let fields = u64::from(word(12)?);
    let header = FIXED_HEADER as u64 + fields;
    let padding = (8 - header % 8) % 8;
    Some(header + padding + body)
}

#[cfg(test)]
mod tests {
    use super::claimed_length;

    fn header(endian: u8, body: u32, fields: u32) -> Vec<u8> {
        let word = |n: u32| {
            if endian == b'l' {
                n.to_le_bytes()
            } else {
                n.to_be_bytes()
            }
        };
        let mut h = vec![endian, 1, 0, 1];
        h.extend_from_slice(&word(body));
        h.extend_from_slice(&word(1));
        h.extend_from_slice(&word(fields));
        h
    }

    #[test]
    fn the_claim_covers_fields_padding_and_body() {
        assert_eq!(claimed_length(&header(b'l', 0, 0)), Some(16));
        assert_eq!(claimed_length(&header(b'l', 10, 1)), Some(24 + 10));
        assert_eq!(claimed_length(&header(b'B', 10, 8)), Some(24 + 10));
        assert_eq!(
            claimed_length(&header(b'l', u32::MAX, u32::MAX)),
            // 16 + MAX is 7 past a multiple of 8: one byte of padding.
            Some(16 + u64::from(u32::MAX) + 1 + u64::from(u32::MAX))
        );
        assert_eq!(claimed_length(&header(b'x', 1, 1)), None);
        assert_eq!(claimed_length(&[b'l', 1]), None);
    }

    #[test]
    fn claimed_lengths() {
        // Little-endian, body 8, fields 5: 16 + 5 padded to 24, + 8.
        let mut h = [0u8; 16];
        h[0] = b'l';
        h[4] = 8;
        h[12] = 5;
        assert_eq!(claimed_length(&h), Some(32));
        let mut b = [0u8; 16];
        b[0] = b'B';
        b[4..8].copy_from_slice(&(120u32 << 20).to_be_bytes());
        assert_eq!(claimed_length(&b), Some(16 + (120 << 20)));
        b[0] = b'x';
        assert_eq!(claimed_length(&b), None);
        assert_eq!(claimed_length(&h[..8]), None);
    }
}
