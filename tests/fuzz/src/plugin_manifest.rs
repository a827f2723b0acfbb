//! The manifest and signature sections' contents, framed as a component so
//! the mutations land in the JSON rather than in section sizes. The input is
//! the manifest JSON, optionally followed by a 0xFF byte and the signature
//! section's JSON.

use callboard::plugins::{manifest, signing};

/// The component header (`\0asm`, version 0x0d, layer 1).
const HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// One input: `manifest-json [0xFF signature-json]`.
pub fn run(data: &[u8]) {
    let (manifest_json, signature_json) = match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let mut bytes = HEADER.to_vec();
    custom_section(&mut bytes, manifest::SECTION, manifest_json);
    if let Some(signature) = signature_json {
        custom_section(&mut bytes, signing::SECTION, signature);
    }
    crate::plugin_file::check(&bytes);
}

fn custom_section(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut content = Vec::with_capacity(name.len() + data.len() + 5);
    leb128(&mut content, name.len());
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(data);
    out.push(0);
    leb128(out, content.len());
    out.extend_from_slice(&content);
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
