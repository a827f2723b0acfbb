//! The tab, the card and the page, from what the clusters answered. Pure:
//! no host calls, so the layout is tested natively.

use callboard_sdk::ui::{
    Block, Button, Card, Cell, Change, Direction, Link, Notice, Stat, Table, Tone, View,
};
use serde_json::Value;

use crate::{
    detect::{Detected, seconds},
    kinds::Kind,
    model::{ClusterReport, clip},
};

/// Rows per table; the rest are counted in a line under it.
pub const MAX_ROWS: usize = 50;
/// Error notices per cluster.
pub const MAX_ERRORS: usize = 30;
/// Restart buttons per cluster.
pub const MAX_BUTTONS: usize = 20;
/// Rows of the errors page.
pub const MAX_PAGE_ROWS: usize = 300;

/// The action a restart button runs.
pub const RESTART: &str = "restart";

/// How an error reads: bad from severity 6, a warning below.
pub fn tone(severity: u8) -> Tone {
    if severity >= 6 {
        Tone::Bad
    } else {
        Tone::Warning
    }
}

/// Renders one object as a table row (`now` in seconds).
type RowFn = fn(&Value, i64) -> Vec<Cell>;

/// One cluster's answers and the errors found in them.
pub struct Section<'a> {
    /// What the cluster answered.
    pub report: &'a ClusterReport,
    /// The errors, most severe first.
    pub errors: &'a [Detected],
}

/// Everything a view of one entity shows.
pub struct EntityView<'a> {
    /// The entity's ref, `component:default/x`.
    pub entity_ref: &'a str,
    /// The entity page's path.
    pub entity_href: &'a str,
    /// What the entity selects, as text.
    pub selector: &'a str,
    /// One section per configured cluster, in the configured order.
    pub sections: Vec<Section<'a>>,
    /// What is wrong with the settings or the entity's annotations.
    pub problems: &'a [String],
    /// Whether the viewer may restart this entity's deployments.
    pub can_restart: bool,
    /// Now, in seconds since the epoch.
    pub now: i64,
}

impl EntityView<'_> {
    fn operator_notices(&self) -> Vec<Block> {
        let mut blocks: Vec<Block> = self
            .problems
            .iter()
            .map(|p| Block::Notice(Notice::new(Tone::Warning, p.clone(), None)))
            .collect();
        for section in &self.sections {
            if let Some((title, detail, all)) = section.report.problem() {
                blocks.push(Block::Notice(Notice::new(
                    if all { Tone::Bad } else { Tone::Warning },
                    title,
                    Some(detail),
                )));
            }
        }
        blocks
    }

    /// Sections with something to show (the rest are folded into a line).
    fn shown(&self) -> impl Iterator<Item = &Section<'_>> {
        self.sections
            .iter()
            .filter(|s| !s.report.is_down() && !s.report.resources.is_empty())
    }

    /// `No resources in: staging, dev` for clusters that answered with
    /// nothing matching.
    fn folded(&self) -> Option<Block> {
        let empty: Vec<&str> = self
            .sections
            .iter()
            .filter(|s| !s.report.is_down() && s.report.resources.is_empty())
            .map(|s| s.report.cluster.name.as_str())
            .collect();
        (!empty.is_empty()).then(|| Block::Text(format!("No resources in: {}", empty.join(", "))))
    }

    /// The entity tab: operator problems and a summary, then per cluster
    /// its errors and its objects.
    pub fn tab(&self) -> View {
        let mut view = View::new("Kubernetes");
        let mut summary = Card::new("Summary");
        for block in self.operator_notices() {
            summary = summary.block(block);
        }
        let shown: Vec<&Section<'_>> = self.shown().collect();
        let errors: usize = shown.iter().map(|s| s.errors.len()).sum();
        let (ready, total) = shown
            .iter()
            .map(|s| pods_ready(s.report.resources.get(Kind::Pods)))
            .fold((0, 0), |(r, t), (a, b)| (r + a, t + b));
        summary = summary.block(Block::Stats(vec![
            Stat::new(
                "Clusters with resources",
                format!("{} of {}", shown.len(), self.sections.len()),
            ),
            Stat::new("Pods ready", format!("{ready}/{total}")),
            errors_stat(errors),
        ]));
        if let Some(folded) = self.folded() {
            summary = summary.block(folded);
        }
        if shown.is_empty() && self.sections.iter().any(|s| !s.report.is_down()) {
            summary = summary.block(Block::Text(format!(
                "Nothing in the clusters that answered is selected by {} ({}).",
                self.entity_ref, self.selector
            )));
        }
        view = view.card(summary);
        for section in shown {
            view = view.card(self.cluster_card(section));
        }
        view
    }

    fn cluster_card(&self, section: &Section<'_>) -> Card {
        let report = section.report;
        let cluster = &report.cluster;
        let mut card = Card::new(match &cluster.title {
            Some(title) => format!("{title} ({})", cluster.name),
            None => cluster.name.clone(),
        });
        // Errors first.
        if section.errors.is_empty() {
            card = card.block(Block::Notice(Notice::new(
                Tone::Good,
                format!("No errors found in {}", cluster.name),
                None,
            )));
        }
        for e in section.errors.iter().take(MAX_ERRORS) {
            card = card.block(error_notice(e));
        }
        if section.errors.len() > MAX_ERRORS {
            card = card.block(Block::Text(format!(
                "… and {} more errors.",
                section.errors.len() - MAX_ERRORS
            )));
        }
        if let Some(url) = &cluster.dashboard_url {
            card = card.block(Block::Link(Link::new(
                format!("Open {} in its dashboard", cluster.name),
                url.clone(),
            )));
        }
        let r = &report.resources;
        let now = self.now;
        let tables: [(Kind, Vec<&str>, RowFn); 7] = [
            (
                Kind::Deployments,
                vec![
                    "Namespace",
                    "Deployment",
                    "Ready",
                    "Up to date",
                    "Available",
                    "Image",
                    "Age",
                ],
                deployment_row,
            ),
            (
                Kind::Pods,
                vec!["Namespace", "Pod", "Status", "Ready", "Restarts", "Age"],
                pod_row,
            ),
            (
                Kind::Services,
                vec!["Namespace", "Service", "Type", "Cluster IP", "Ports"],
                service_row,
            ),
            (
                Kind::Ingresses,
                vec!["Namespace", "Ingress", "Hosts", "Address"],
                ingress_row,
            ),
            (
                Kind::Hpas,
                vec![
                    "Namespace",
                    "Autoscaler",
                    "Target",
                    "Min",
                    "Max",
                    "Current",
                    "Metric",
                ],
                hpa_row,
            ),
            (
                Kind::Jobs,
                vec!["Namespace", "Job", "Status", "Completions", "Started"],
                job_row,
            ),
            (
                Kind::CronJobs,
                vec!["Namespace", "CronJob", "Schedule", "Suspended", "Last run"],
                cronjob_row,
            ),
        ];
        for (kind, columns, row) in tables {
            let mut objects: Vec<&Value> = r.get(kind).iter().collect();
            if objects.is_empty() {
                continue;
            }
            if kind == Kind::Pods {
                // Troubled pods first.
                objects.sort_by_key(|p| pod_status(p).1 == Tone::Good);
            }
            card = card.block(Block::Markdown(format!(
                "#### {} ({})",
                kind.title(),
                objects.len()
            )));
            let mut table = Table::new(columns);
            for object in objects.iter().take(MAX_ROWS) {
                table = table.row(row(object, now));
            }
            card = card.block(Block::Table(table));
            if objects.len() > MAX_ROWS {
                card = card.block(Block::Text(format!(
                    "… and {} more {}.",
                    objects.len() - MAX_ROWS,
                    kind.plural()
                )));
            }
            if report.more.contains(&kind) {
                card = card.block(Block::Text(format!(
                    "The cluster has more {} than the plugin asks for at once; only these are shown.",
                    kind.plural()
                )));
            }
            if kind == Kind::Deployments && self.can_restart {
                for d in objects.iter().take(MAX_BUTTONS) {
                    let ns = d["metadata"]["namespace"].as_str().unwrap_or("");
                    let name = d["metadata"]["name"].as_str().unwrap_or("");
                    card = card.block(Block::Button(
                        Button::new(format!("Restart deployment {ns}/{name}"), RESTART)
                            .value("cluster", cluster.name.clone())
                            .value("namespace", ns)
                            .value("deployment", name)
                            .tone(Tone::Bad),
                    ));
                }
            }
        }
        card
    }

    /// The entity card: per cluster, pods ready and errors; problems in a line each.
    pub fn card(&self) -> View {
        let mut card = Card::untitled();
        let shown: Vec<&Section<'_>> = self.shown().collect();
        if !shown.is_empty() {
            card = card.block(Block::Stats(
                shown
                    .iter()
                    .map(|s| {
                        let (ready, total) = pods_ready(s.report.resources.get(Kind::Pods));
                        let n = s.errors.len();
                        Stat::new(
                            s.report.cluster.name.clone(),
                            format!("{ready}/{total} pods ready"),
                        )
                        .with_change(if n == 0 {
                            Change::new("no errors", Direction::Flat, Tone::Good)
                        } else {
                            Change::new(
                                format!("{n} error{}", if n == 1 { "" } else { "s" }),
                                Direction::Down,
                                Tone::Bad,
                            )
                        })
                    })
                    .collect(),
            ));
        }
        for block in self.operator_notices() {
            card = card.block(block);
        }
        if let Some(folded) = self.folded() {
            card = card.block(folded);
        }
        if let Some(worst) = shown
            .iter()
            .flat_map(|s| s.errors.iter())
            .max_by_key(|e| e.severity)
        {
            card = card.block(Block::Badges(vec![callboard_sdk::ui::Badge::new(
                format!("{}: {}", worst.error_type, worst.workload),
                tone(worst.severity),
            )]));
        }
        card = card.block(Block::Link(Link::new(
            "Workloads, errors and fixes",
            format!("{}?tab=kubernetes", self.entity_href),
        )));
        View::new("Kubernetes").card(card)
    }
}

fn errors_stat(errors: usize) -> Stat {
    let stat = Stat::new("Errors", errors.to_string());
    if errors == 0 {
        stat.with_change(Change::new("healthy", Direction::Flat, Tone::Good))
    } else {
        stat
    }
}

/// An error as a notice: what and where in the title, the cluster's
/// message and the proposed fix below.
pub fn error_notice(e: &Detected) -> Block {
    Block::Notice(Notice::new(
        tone(e.severity),
        format!("{}: {}", e.error_type, e.object()),
        Some(format!(
            "{}. {}",
            clip(&e.message, 400).trim_end_matches('.'),
            e.fix()
        )),
    ))
}

/// `(ready, total)` pods, finished ones (of jobs) not counted.
pub fn pods_ready(pods: &[Value]) -> (usize, usize) {
    let live = pods
        .iter()
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")));
    live.fold((0, 0), |(r, t), p| {
        let ready = p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        (r + usize::from(ready), t + 1)
    })
}

/// What `kubectl get pods` would call its status, and how it reads.
pub fn pod_status(pod: &Value) -> (String, Tone) {
    let status = &pod["status"];
    if let Some(reason) = status["reason"].as_str() {
        return (reason.to_owned(), Tone::Bad);
    }
    let statuses: Vec<&Value> = status["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    for cs in &statuses {
        if let Some(reason) = cs["state"]["waiting"]["reason"].as_str() {
            let tone = if matches!(reason, "ContainerCreating" | "PodInitializing") {
                Tone::Info
            } else {
                Tone::Bad
            };
            return (reason.to_owned(), tone);
        }
    }
    match status["phase"].as_str().unwrap_or("Unknown") {
        "Running" => {
            if statuses.iter().all(|cs| cs["ready"] == true) {
                ("Running".to_owned(), Tone::Good)
            } else {
                ("Running, not ready".to_owned(), Tone::Warning)
            }
        }
        "Succeeded" => ("Completed".to_owned(), Tone::Neutral),
        "Failed" => ("Failed".to_owned(), Tone::Bad),
        "Pending" => ("Pending".to_owned(), Tone::Warning),
        other => (other.to_owned(), Tone::Neutral),
    }
}

/// kubectl's ages: `45s`, `12m`, `5h`, `3d`.
pub fn age(now: i64, then: Option<i64>) -> String {
    let Some(then) = then else {
        return String::new();
    };
    match (now - then).max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn ns_name(object: &Value) -> (Cell, Cell) {
    (
        Cell::text(object["metadata"]["namespace"].as_str().unwrap_or("")),
        Cell::text(object["metadata"]["name"].as_str().unwrap_or("")),
    )
}

fn created(object: &Value) -> Option<i64> {
    seconds(&object["metadata"]["creationTimestamp"])
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn deployment_row(d: &Value, now: i64) -> Vec<Cell> {
    let (ns, name) = ns_name(d);
    let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let ready = int(&d["status"]["readyReplicas"]);
    let images: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str())
        .collect();
    vec![
        ns,
        name,
        Cell::badge(
            format!("{ready}/{desired}"),
            if ready >= desired {
                Tone::Good
            } else {
                Tone::Bad
            },
        ),
        Cell::number(int(&d["status"]["updatedReplicas"]).to_string()),
        Cell::number(int(&d["status"]["availableReplicas"]).to_string()),
        Cell::text(clip(&images.join(", "), 200)),
        Cell::text(age(now, created(d))),
    ]
}

fn pod_row(p: &Value, now: i64) -> Vec<Cell> {
    let (ns, name) = ns_name(p);
    let (status, tone) = pod_status(p);
    let statuses = p["status"]["containerStatuses"].as_array();
    let total = statuses.map_or(0, Vec::len);
    let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
    let restarts: i64 = statuses.map_or(0, |s| s.iter().map(|c| int(&c["restartCount"])).sum());
    vec![
        ns,
        name,
        Cell::badge(status, tone),
        Cell::number(format!("{ready}/{total}")),
        Cell::number(restarts.to_string()),
        Cell::text(age(now, created(p))),
    ]
}

fn service_row(s: &Value, _: i64) -> Vec<Cell> {
    let (ns, name) = ns_name(s);
    let ports: Vec<String> = s["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
        .collect();
    vec![
        ns,
        name,
        Cell::text(s["spec"]["type"].as_str().unwrap_or("ClusterIP")),
        Cell::text(s["spec"]["clusterIP"].as_str().unwrap_or("")),
        Cell::text(clip(&ports.join(", "), 200)),
    ]
}

fn ingress_row(i: &Value, _: i64) -> Vec<Cell> {
    let (ns, name) = ns_name(i);
    let hosts: Vec<&str> = i["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["host"].as_str())
        .collect();
    let addresses: Vec<&str> = i["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["ip"].as_str().or_else(|| a["hostname"].as_str()))
        .collect();
    vec![
        ns,
        name,
        Cell::text(clip(&hosts.join(", "), 200)),
        Cell::text(addresses.join(", ")),
    ]
}

fn hpa_row(h: &Value, _: i64) -> Vec<Cell> {
    let (ns, name) = ns_name(h);
    let target = &h["spec"]["scaleTargetRef"];
    let max = int(&h["spec"]["maxReplicas"]);
    let current = int(&h["status"]["currentReplicas"]);
    let metric = h["status"]["currentMetrics"]
        .as_array()
        .and_then(|m| m.first())
        .and_then(|m| {
            let r = &m["resource"];
            Some(format!(
                "{} {}%",
                r["name"].as_str()?,
                r["current"]["averageUtilization"].as_i64()?
            ))
        })
        .unwrap_or_default();
    vec![
        ns,
        name,
        Cell::text(format!(
            "{}/{}",
            target["kind"].as_str().unwrap_or("").to_ascii_lowercase(),
            target["name"].as_str().unwrap_or("")
        )),
        Cell::number(h["spec"]["minReplicas"].as_i64().unwrap_or(1).to_string()),
        Cell::number(max.to_string()),
        Cell::badge(
            current.to_string(),
            if max > 0 && current >= max {
                Tone::Warning
            } else {
                Tone::Neutral
            },
        ),
        Cell::text(metric),
    ]
}

fn job_row(j: &Value, now: i64) -> Vec<Cell> {
    let (ns, name) = ns_name(j);
    let condition = |kind: &str| {
        j["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == kind && c["status"] == "True")
    };
    let (status, tone) = if condition("Failed") {
        ("Failed", Tone::Bad)
    } else if condition("Complete") {
        ("Complete", Tone::Good)
    } else if condition("Suspended") {
        ("Suspended", Tone::Neutral)
    } else {
        ("Running", Tone::Info)
    };
    vec![
        ns,
        name,
        Cell::badge(status, tone),
        Cell::number(format!(
            "{}/{}",
            int(&j["status"]["succeeded"]),
            j["spec"]["completions"].as_i64().unwrap_or(1)
        )),
        Cell::text(age(
            now,
            seconds(&j["status"]["startTime"]).or_else(|| created(j)),
        )),
    ]
}

fn cronjob_row(c: &Value, now: i64) -> Vec<Cell> {
    let (ns, name) = ns_name(c);
    vec![
        ns,
        name,
        Cell::text(c["spec"]["schedule"].as_str().unwrap_or("")),
        Cell::text(if c["spec"]["suspend"] == true {
            "yes"
        } else {
            "no"
        }),
        Cell::text(
            seconds(&c["status"]["lastScheduleTime"])
                .map(|t| format!("{} ago", age(now, Some(t))))
                .unwrap_or_else(|| "never".to_owned()),
        ),
    ]
}

/// One error on the errors page.
pub struct PageRow<'a> {
    /// The entity's ref.
    pub entity_ref: &'a str,
    /// Its page's path.
    pub entity_href: &'a str,
    /// The cluster.
    pub cluster: &'a str,
    /// The error.
    pub error: &'a Detected,
}

/// The errors page: every workload with errors, across the catalog.
pub fn page(
    rows: &mut [PageRow<'_>],
    notices: Vec<Block>,
    entities: usize,
    clusters: usize,
    note: Option<String>,
) -> View {
    rows.sort_by(|a, b| {
        b.error
            .severity
            .cmp(&a.error.severity)
            .then_with(|| a.entity_ref.cmp(b.entity_ref))
            .then_with(|| a.cluster.cmp(b.cluster))
            .then_with(|| a.error.kind.cmp(&b.error.kind))
            .then_with(|| a.error.name.cmp(&b.error.name))
    });
    let mut workloads: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r.entity_ref, r.cluster, r.error.workload.as_str()))
        .collect();
    workloads.sort_unstable();
    workloads.dedup();
    let mut summary = Card::untitled();
    for notice in notices {
        summary = summary.block(notice);
    }
    summary = summary.block(Block::Stats(vec![
        Stat::new("Components checked", entities.to_string()),
        Stat::new("Clusters", clusters.to_string()),
        Stat::new("Workloads with errors", workloads.len().to_string()),
        errors_stat(rows.len()),
    ]));
    if let Some(note) = note {
        summary = summary.block(Block::Text(note));
    }
    let view = View::new("Kubernetes: workloads with errors").card(summary);
    if rows.is_empty() {
        return view.card(Card::untitled().block(Block::Notice(Notice::new(
            Tone::Good,
            format!("No errors in the workloads of {entities} components"),
            None,
        ))));
    }
    let mut table = Table::new([
        "Component",
        "Cluster",
        "Workload",
        "Problem",
        "Object",
        "Message",
        "Proposed fix",
    ]);
    for row in rows.iter().take(MAX_PAGE_ROWS) {
        let e = row.error;
        table = table.row(vec![
            Cell::link(
                row.entity_ref.to_owned(),
                format!("{}?tab=kubernetes", row.entity_href),
            ),
            Cell::text(row.cluster),
            Cell::text(format!("{} in {}", e.workload, e.namespace)),
            Cell::badge(e.error_type.clone(), tone(e.severity)),
            Cell::text(e.object()),
            Cell::text(clip(&e.message, 300)),
            Cell::text(clip(&e.actions.join(" "), 400)),
        ]);
    }
    let mut card = Card::new("Errors, most severe first").block(Block::Table(table));
    if rows.len() > MAX_PAGE_ROWS {
        card = card.block(Block::Text(format!(
            "… and {} more errors.",
            rows.len() - MAX_PAGE_ROWS
        )));
    }
    view.card(card)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        detect::detect,
        model::{Failure, Listed},
        settings::Cluster,
    };

    fn cluster(name: &str) -> Cluster {
        Cluster {
            name: name.into(),
            url: format!("http://127.0.0.1:1/{name}"),
            title: None,
            dashboard_url: None,
        }
    }

    fn report(name: &str, pods: Vec<Value>, deployments: Vec<Value>) -> ClusterReport {
        let mut r = ClusterReport::new(cluster(name));
        r.add(
            Kind::Pods,
            "/p",
            &Ok(Listed {
                items: pods,
                more: false,
            }),
            |_| true,
        );
        r.add(
            Kind::Deployments,
            "/d",
            &Ok(Listed {
                items: deployments,
                more: false,
            }),
            |_| true,
        );
        r
    }

    fn texts(view: &View) -> String {
        format!("{view:?}")
    }

    #[test]
    fn tab_folds_empty_clusters_and_names_a_refusing_one_once() {
        let crashing = json!({
            "metadata": {"name": "web-1", "namespace": "shop", "creationTimestamp": "2026-05-04T10:00:00Z"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "web", "ready": false, "restartCount": 3, "lastState": {}, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}]},
        });
        let deployment = json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": "web:1"}]}}},
            "status": {"replicas": 1},
        });
        let prod = report("prod", vec![crashing], vec![deployment]);
        let staging = report("staging", vec![], vec![]);
        let mut legacy = ClusterReport::new(cluster("legacy"));
        for kind in [Kind::Pods, Kind::Deployments] {
            legacy.add(
                kind,
                "/x",
                &Err(Failure::Status {
                    code: 401,
                    reason: None,
                    message: None,
                }),
                |_| true,
            );
        }
        let now = seconds(&json!("2026-05-04T12:00:00Z")).unwrap();
        let errors: Vec<Vec<Detected>> = [&prod, &staging, &legacy]
            .iter()
            .map(|r| detect(&r.resources, now, 5))
            .collect();
        let view = EntityView {
            entity_ref: "component:default/web",
            entity_href: "/catalog/default/component/web",
            selector: "backstage.io/kubernetes-id=web",
            sections: vec![
                Section {
                    report: &prod,
                    errors: &errors[0],
                },
                Section {
                    report: &staging,
                    errors: &errors[1],
                },
                Section {
                    report: &legacy,
                    errors: &errors[2],
                },
            ],
            problems: &[],
            can_restart: true,
            now,
        };
        let tab = view.tab();
        assert_eq!(tab.cards.len(), 2, "the summary and prod only: {tab:#?}");
        let all = texts(&tab);
        assert!(all.contains("No resources in: staging"), "{all}");
        assert_eq!(
            all.matches("cluster legacy refused the plugin's credentials (401)")
                .count(),
            1,
            "{all}"
        );
        assert!(
            all.contains("CrashLoopBackOff: pod shop/web-1 (container web)"),
            "{all}"
        );
        assert!(all.contains("Restart deployment shop/web"), "{all}");
        // Errors come before the tables in the cluster's card.
        let prod_card = &tab.cards[1];
        assert!(matches!(prod_card.blocks[0], Block::Notice(ref n) if n.tone == Tone::Bad));

        let no_restart = EntityView {
            can_restart: false,
            ..view
        };
        assert!(!texts(&no_restart.tab()).contains("Restart deployment"));

        let card = no_restart.card();
        let all = texts(&card);
        assert!(all.contains("0/1 pods ready"), "{all}");
        assert!(all.contains("1 error"), "{all}");
        assert!(
            all.contains("/catalog/default/component/web?tab=kubernetes"),
            "{all}"
        );
        assert!(all.contains("No resources in: staging"), "{all}");
    }

    #[test]
    fn statuses_and_ages() {
        let pod = |status: Value| json!({"status": status});
        assert_eq!(
            pod_status(&pod(
                json!({"phase": "Running", "containerStatuses": [{"ready": true}]})
            )),
            ("Running".to_owned(), Tone::Good)
        );
        assert_eq!(
            pod_status(&pod(json!({"phase": "Running", "containerStatuses": [{"ready": false, "state": {"running": {}}}]}))).0,
            "Running, not ready"
        );
        assert_eq!(
            pod_status(&pod(
                json!({"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]})
            )),
            ("ImagePullBackOff".to_owned(), Tone::Bad)
        );
        assert_eq!(
            pod_status(&pod(json!({"phase": "Failed", "reason": "Evicted"}))).0,
            "Evicted"
        );
        assert_eq!(age(1000, Some(1000 - 45)), "45s");
        assert_eq!(age(10_000, Some(10_000 - 700)), "11m");
        assert_eq!(age(100_000, Some(100_000 - 5 * 3600)), "5h");
        assert_eq!(age(1_000_000, Some(1_000_000 - 3 * 86_400)), "3d");
        assert_eq!(age(5, None), "");
        let pods = vec![
            json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
            json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}),
            json!({"status": {"phase": "Succeeded"}}),
        ];
        assert_eq!(pods_ready(&pods), (1, 2));
    }
}
