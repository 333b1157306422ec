//! Standard base64, as Engine.IO uses for binary data over polling (`b` + base64). The codec
//! is data-encoding's, which the binary links anyway (tungstenite's handshake uses it).

/// Appends the padded base64 form of `data` to `out`.
pub fn encode_into(data: &[u8], out: &mut String) {
    data_encoding::BASE64.encode_append(data, out);
}

/// Decodes base64 text, padded or not; `None` if it is not valid base64. The unused bits of
/// the last character are ignored, as Node's `Buffer.from(text, "base64")` ignores them, so
/// what engine.io accepts is accepted here too.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let unpadded = text.trim_end_matches('=');
    if text.len() - unpadded.len() > 2 {
        return None;
    }
    let mut bytes = unpadded.as_bytes().to_vec();
    // A final group of 2 characters carries 8 bits of 12, one of 3 carries 16 of 18.
    let unused_bits = match bytes.len() % 4 {
        2 => 4,
        3 => 2,
        _ => 0,
    };
    if let Some(last) = bytes.last_mut().filter(|_| unused_bits > 0) {
        let value = ALPHABET.iter().position(|&c| c == *last)?;
        *last = ALPHABET[value >> unused_bits << unused_bits];
    }
    data_encoding::BASE64_NOPAD.decode(&bytes).ok()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_all_lengths() {
        let data: Vec<u8> = (0..=255).collect();
        for len in 0..20 {
            let mut text = String::new();
            encode_into(&data[..len], &mut text);
            assert_eq!(text.len() % 4, 0);
            assert_eq!(decode(&text).as_deref(), Some(&data[..len]));
        }
    }

    #[test]
    fn known_vectors() {
        let mut text = String::new();
        encode_into(b"foobar", &mut text);
        assert_eq!(text, "Zm9vYmFy");
        assert_eq!(decode("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(decode("Zm9vYg").unwrap(), b"foob");
        assert_eq!(decode("Zm9v!g=="), None);
        assert_eq!(decode("Z"), None);
        assert_eq!(decode("Zg==="), None);
    }

    #[test]
    fn unused_trailing_bits_are_ignored_as_node_does() {
        // "Zh" sets bits past the one byte it carries; Buffer.from("Zh", "base64") is "f".
        assert_eq!(decode("Zh==").unwrap(), b"f");
        assert_eq!(decode("Zm9vYh").unwrap(), b"foob");
    }
}
