//! The top-level sections of a component binary, with their exact offsets.
//! Manifests and signatures are custom sections at this level; nested modules
//! are opaque sections here.

use wasmparser::{BinaryReader, Parser};

/// One top-level section.
pub struct Section<'a> {
    /// Offset of the section's id byte.
    pub start: usize,
    /// Section id (0 = custom).
    pub id: u8,
    /// Offset just past the section.
    pub end: usize,
    /// The section's contents (after the size).
    pub content: &'a [u8],
}

impl<'a> Section<'a> {
    /// `(name, data)` for a custom section.
    pub fn custom(&self) -> Option<(&'a str, &'a [u8])> {
        if self.id != 0 {
            return None;
        }
        let mut reader = BinaryReader::new(self.content, 0);
        let name = reader.read_string().ok()?;
        Some((name, &self.content[reader.original_position()..]))
    }
}

/// Why bytes are not a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotComponent {
    /// A core module.
    CoreModule,
    /// Not WebAssembly, or cut short; says where.
    Invalid(String),
}

/// Splits a component into its top-level sections.
pub fn top_level(bytes: &[u8]) -> Result<Vec<Section<'_>>, NotComponent> {
    if !Parser::is_component(bytes) {
        return Err(if Parser::is_core_wasm(bytes) {
            NotComponent::CoreModule
        } else {
            NotComponent::Invalid("missing the component header".into())
        });
    }
    let mut sections = Vec::new();
    let mut reader = BinaryReader::new(&bytes[8..], 8);
    while !reader.eof() {
        let start = reader.original_position();
        let bad = |e: wasmparser::BinaryReaderError| NotComponent::Invalid(e.to_string());
        let id = reader.read_u8().map_err(bad)?;
        let size = reader.read_var_u32().map_err(bad)? as usize;
        let content = reader.read_bytes(size).map_err(|_| {
            NotComponent::Invalid(format!(
                "section at offset {start:#x} runs past the end of the file"
            ))
        })?;
        sections.push(Section {
            start,
            end: reader.original_position(),
            id,
            content,
        });
    }
    Ok(sections)
}
