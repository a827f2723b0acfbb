//! `callboard catalog validate` and `callboard catalog import`.

use std::process::ExitCode;

use callboard::cli::catalog::{CatalogCommand, run};
use callboard_catalog::EntityRef;

use super::harness::{FIXTURE, write_files};

#[tokio::test]
async fn validate_reports_file_line_and_field_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), FIXTURE);
    let config = callboard::config::Config::default();

    let good = run(
        CatalogCommand::Validate {
            paths: vec![dir.path().join("org.yaml")],
            json: false,
        },
        &config,
    )
    .await
    .unwrap();
    assert_eq!(good, ExitCode::SUCCESS);

    write_files(
        dir.path(),
        &[(
            "bad.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: fine}\nspec: {type: service, lifecycle: production, owner: team-a}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: broken}\nspec: {type: service}\n",
        )],
    );
    let bad = run(
        CatalogCommand::Validate {
            paths: vec![dir.path().to_owned()],
            json: true,
        },
        &config,
    )
    .await
    .unwrap();
    assert_eq!(bad, ExitCode::FAILURE);

    // The same check through the library call the CLI makes, to see the details.
    let problems = callboard_catalog::ingest::check_location(
        callboard_catalog::LocationKind::File,
        &dir.path().join("bad.yaml").display().to_string(),
        &callboard_catalog::CatalogConfig::default(),
    )
    .await;
    // one problem per entity, listing every field that is wrong
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert!(p.location.ends_with("bad.yaml"), "{p:?}");
    assert_eq!(p.line, Some(6));
    assert_eq!(p.entity.as_deref(), Some("component:default/broken"));
    assert!(
        p.message.contains("\"spec.lifecycle\" is required"),
        "{p:?}"
    );
    assert!(p.message.contains("\"spec.owner\" is required"), "{p:?}");
}

#[tokio::test]
async fn import_fills_the_database() {
    let dir = tempfile::tempdir().unwrap();
    write_files(&dir.path().join("catalog"), FIXTURE);
    let mut config = callboard::config::Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    // FIXTURE's Location entity points at ../extra, outside the imported folder.
    config.catalog.file_roots = vec![dir.path().to_owned()];
    let code = run(
        CatalogCommand::Import {
            paths: vec![dir.path().join("catalog")],
        },
        &config,
    )
    .await
    .unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    let catalog = crate::support::open_catalog(&dir.path().join("data"), &config.catalog).await;
    for r in [
        "component:default/checkout-web",
        "component:finance/payments",
        "user:default/alice",
    ] {
        assert!(
            catalog
                .get_by_ref(&EntityRef::parse(r).unwrap())
                .await
                .unwrap()
                .is_some(),
            "{r}"
        );
    }
    assert_eq!(catalog.locations().await.unwrap().len(), 1);
    // importing again changes nothing and registers nothing new
    let again = run(
        CatalogCommand::Import {
            paths: vec![dir.path().join("catalog")],
        },
        &config,
    )
    .await
    .unwrap();
    assert_eq!(again, ExitCode::SUCCESS);
    assert_eq!(catalog.locations().await.unwrap().len(), 1);
}
