//! Synthetic TechDocs sections for the search and assistant benchmarks:
//! about 60 words of the synthetic vocabulary each, ten per page, written
//! through the search store as the TechDocs builder writes them.

use std::time::{Duration, Instant};

use callboard_store::search::{SearchDoc, TECHDOCS_TYPE};

use crate::catalog_gen::WORDS;
use crate::rng::Rng;

/// A docs section of about 60 words.
pub fn section_text(rng: &mut Rng) -> String {
    (0..60)
        .map(|_| rng.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Stores `n` docs sections, ten per page, pages spread over components.
pub async fn load_sections(
    stores: &callboard_store::Stores,
    n: usize,
    components: usize,
) -> Duration {
    let mut rng = Rng(7);
    let started = Instant::now();
    for page in 0..n.div_ceil(10) {
        let component = format!("component:default/component-{}", page % components.max(1));
        let docs: Vec<SearchDoc> = (0..10)
            .map(|s| {
                let mut fields = serde_json::Map::new();
                fields.insert("kind".into(), "Component".into());
                SearchDoc {
                    doc_type: TECHDOCS_TYPE.into(),
                    key: format!("techdocs:{component}:page-{page}/#s{s}"),
                    entity_ref: Some(component.clone()),
                    permission: None,
                    title: format!("{} {}", rng.pick(WORDS), rng.pick(WORDS)),
                    names: format!("page {page}"),
                    text: section_text(&mut rng),
                    location: format!("/docs/default/component/x/page-{page}/#s{s}"),
                    fields,
                }
            })
            .collect();
        stores
            .search
            .replace_group(&format!("techdocs:{component}:page-{page}/"), docs)
            .await
            .unwrap();
    }
    started.elapsed()
}
