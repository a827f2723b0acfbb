//! Times a full build and a one-page rebuild of the generated site:
//! `cargo run --release -p callboard-docs --example bench -- 5000`.

use std::time::Instant;

fn main() {
    let pages: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    let mut files = callboard_docs::sample_site(pages);
    let start = Instant::now();
    let first = callboard_docs::build(&files, None);
    let elapsed = start.elapsed();
    println!(
        "full build: {} pages in {:.2?} = {:.0} pages/s, {} problems",
        first.pages.len(),
        elapsed,
        first.pages.len() as f64 / elapsed.as_secs_f64(),
        first.problems.len()
    );
    let path = "docs/section-1/page-50.md";
    let mut text =
        String::from_utf8(files.get(path).unwrap_or_default().to_vec()).unwrap_or_default();
    text.push_str("\nOne more line.\n");
    files.insert(path, text).expect("valid path");
    let start = Instant::now();
    let second = callboard_docs::build(&files, Some(&first.manifest));
    println!(
        "one changed page: {} rendered, {} unchanged, in {:.2?}",
        second.pages.len(),
        second.unchanged.len(),
        start.elapsed()
    );
    if std::env::args().any(|a| a == "--show") {
        if let Some(page) = first.pages.iter().find(|p| p.source == path) {
            println!("{}", page.html);
            println!("{:#?}", page.toc);
        }
        for p in first.problems.iter().take(20) {
            println!("{p:?}");
        }
    }
}
