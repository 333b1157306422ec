//! Standard base64, as Engine.IO uses for binary data over polling (`b` + base64). The codec
//! is data-encoding's, which the binary links anyway (tungstenite's handshake uses it).

use std::sync::LazyLock;

use data_encoding::Encoding;

/// Appends the padded base64 form of `data` to `out`.
pub fn encode_into(data: &[u8], out: &mut String) {
    data_encoding::BASE64.encode_append(data, out);
}

/// Decodes base64 text, padded or not; `None` if it is not valid base64.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let unpadded = text.trim_end_matches('=');
    if text.len() - unpadded.len() > 2 {
        return None;
    }
    LENIENT_NOPAD.decode(unpadded.as_bytes()).ok()
}

/// Unpadded standard base64 that ignores the unused bits of the last character, as Node's
/// `Buffer.from(text, "base64")` does, so what engine.io accepts is accepted here too.
static LENIENT_NOPAD: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = data_encoding::BASE64_NOPAD.specification();
    spec.check_trailing_bits = false;
    spec.encoding()
        .expect("standard base64 with lenient trailing bits is a valid spec")
});

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
