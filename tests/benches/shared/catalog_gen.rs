//! The synthetic catalog of the catalog benchmarks: a deterministic company
//! (groups in a tree, users, domains, systems, APIs, resources, components)
//! written as multi-document YAML files. Shared by `catalog.rs` (Callboard on
//! each storage backend) and `peer.rs` (Callboard beside Backstage's own
//! catalog backend), so both measure the same catalog. Needs `mod rng`
//! (`shared/rng.rs`) at the bench's root.

use std::path::Path;

use crate::rng::Rng;

pub const WORDS: &[&str] = &[
    "parcel",
    "route",
    "depot",
    "label",
    "tracking",
    "billing",
    "invoice",
    "customer",
    "driver",
    "fleet",
    "sorting",
    "pickup",
    "returns",
    "pricing",
    "customs",
    "warehouse",
    "dispatch",
    "notify",
    "address",
    "payment",
];
pub const TAGS: &[&str] = &[
    "java",
    "go",
    "rust",
    "typescript",
    "python",
    "kafka",
    "grpc",
    "postgres",
    "redis",
    "legacy",
    "pci",
    "gdpr",
];
pub const LIFECYCLES: &[&str] = &[
    "production",
    "production",
    "production",
    "experimental",
    "deprecated",
];
pub const COMPONENT_TYPES: &[&str] = &["service", "service", "website", "library", "batch-job"];
pub const API_TYPES: &[&str] = &["openapi", "asyncapi", "grpc", "graphql"];
pub const RESOURCE_TYPES: &[&str] = &["database", "queue", "bucket", "cache"];

pub struct Counts {
    pub groups: usize,
    pub users: usize,
    pub domains: usize,
    pub systems: usize,
    pub apis: usize,
    pub resources: usize,
    pub components: usize,
}

pub fn counts(n: usize) -> Counts {
    let groups = (n / 50).max(2);
    let users = n / 10;
    let domains = (n / 2000).max(2);
    let systems = (n / 40).max(2);
    let apis = n / 5;
    let resources = n / 6;
    let components = n - groups - users - domains - systems - apis - resources;
    Counts {
        groups,
        users,
        domains,
        systems,
        apis,
        resources,
        components,
    }
}

/// Writes `n` entities as multi-document YAML files of 250 entities each.
pub fn generate(dir: &Path, n: usize) -> usize {
    let c = counts(n);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut docs: Vec<String> = Vec::with_capacity(n);
    let mut api_names: Vec<String> = Vec::with_capacity(c.apis);
    for i in 0..c.groups {
        let parent = if i == 0 {
            String::new()
        } else {
            format!("  parent: group-{}\n", (i - 1) / 4)
        };
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: group-{i}\n  title: Team {i}\n  description: The {} team\nspec:\n  type: team\n{parent}  children: []\n",
            WORDS[i % WORDS.len()]
        ));
    }
    for i in 0..c.users {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: user-{i}\nspec:\n  memberOf: [group-{}]\n  profile:\n    displayName: User {i}\n    email: user-{i}@example.com\n",
            rng.below(c.groups)
        ));
    }
    for i in 0..c.domains {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Domain\nmetadata:\n  name: domain-{i}\n  description: Domain {i}\nspec:\n  owner: group-{}\n",
            rng.below(c.groups)
        ));
    }
    for i in 0..c.systems {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: system-{i}\n  description: The {} system\nspec:\n  owner: group-{}\n  domain: domain-{}\n",
            rng.pick(WORDS),
            rng.below(c.groups),
            rng.below(c.domains)
        ));
    }
    for i in 0..c.apis {
        let api = format!("{}-api-{i}", rng.pick(WORDS));
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: {api}\n  description: {} API\n  tags: [{}]\nspec:\n  type: {}\n  lifecycle: {}\n  owner: group-{}\n  system: system-{}\n  definition: |\n    openapi: 3.0.0\n    info: {{title: api {i}, version: 1.0.0}}\n    paths: {{}}\n",
            rng.pick(WORDS),
            rng.pick(TAGS),
            rng.pick(API_TYPES),
            rng.pick(LIFECYCLES),
            rng.below(c.groups),
            rng.below(c.systems)
        ));
        api_names.push(api);
    }
    for i in 0..c.resources {
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: {}-{}-{i}\nspec:\n  type: {}\n  owner: group-{}\n  system: system-{}\n",
            rng.pick(WORDS),
            rng.pick(RESOURCE_TYPES),
            rng.pick(RESOURCE_TYPES),
            rng.below(c.groups),
            rng.below(c.systems)
        ));
    }
    for i in 0..c.components {
        let provides = api_names[rng.below(api_names.len())].clone();
        let consumes = api_names[rng.below(api_names.len())].clone();
        let t1 = rng.pick(TAGS);
        let t2 = rng.pick(TAGS);
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {w1}-{w2}-{i}\n  title: {w1} {w2} {i}\n  description: Handles {w1} for {w2}\n  tags: [{t1}, {t2}]\n  annotations:\n    github.com/project-slug: example/{w1}-{i}\n  links:\n    - url: https://{w1}.example.com\n      title: Dashboard\nspec:\n  type: {ty}\n  lifecycle: {lc}\n  owner: group-{g}\n  system: system-{s}\n  providesApis: [{pa}]\n  consumesApis: [{ca}]\n",
            w1 = rng.pick(WORDS),
            w2 = rng.pick(WORDS),
            ty = rng.pick(COMPONENT_TYPES),
            lc = rng.pick(LIFECYCLES),
            g = rng.below(c.groups),
            s = rng.below(c.systems),
            pa = provides,
            ca = consumes,
        ));
    }
    std::fs::create_dir_all(dir).unwrap();
    for (i, chunk) in docs.chunks(250).enumerate() {
        std::fs::write(
            dir.join(format!("catalog-{i:05}.yaml")),
            chunk.join("---\n"),
        )
        .unwrap();
    }
    docs.len()
}
