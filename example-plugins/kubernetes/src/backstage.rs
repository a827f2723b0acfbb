//! Backstage's Kubernetes backend answers, so its clients work against the
//! plugin: `POST /resources/workloads/query` (`ObjectsByEntityResponse`) and
//! `GET /clusters`.

use serde_json::{Value, json};

use crate::{
    detect::Detected,
    kinds::Kind,
    model::{ClusterReport, object},
    settings::Cluster,
};

/// `{"name", "title"?, "dashboardUrl"?}`.
fn cluster_json(cluster: &Cluster) -> Value {
    object(vec![
        ("name", Some(json!(cluster.name))),
        ("title", cluster.title.as_ref().map(|t| json!(t))),
        (
            "dashboardUrl",
            cluster.dashboard_url.as_ref().map(|u| json!(u)),
        ),
    ])
}

/// `GET /clusters`: `{"items": [{"name", "title"?, "dashboardUrl"?, "authProvider"}]}`.
/// The credentials are the operator's, held by the portal: Backstage's
/// `serviceAccount` provider.
pub fn clusters(clusters: &[Cluster]) -> Value {
    json!({
        "items": clusters.iter().map(|c| {
            let mut item = cluster_json(c);
            item["authProvider"] = json!("serviceAccount");
            item
        }).collect::<Vec<_>>(),
    })
}

/// `ObjectsByEntityResponse`: per cluster, the objects by type, the fetch
/// errors (Backstage's `KubernetesFetchError`s), no pod metrics, and, as a
/// Callboard addition, `detectedErrors` in Backstage's `DetectedError` shape.
pub fn workloads(reports: &[ClusterReport], errors: &[Vec<Detected>]) -> Value {
    let items: Vec<Value> = reports
        .iter()
        .zip(errors)
        .map(|(report, detected)| {
            let resources: Vec<Value> = Kind::ALL
                .iter()
                .filter(|k| !report.failures.iter().any(|(f, _, _)| f == *k))
                .map(|k| json!({"type": k.plural(), "resources": report.resources.get(*k)}))
                .collect();
            let fetch_errors: Vec<Value> = report
                .failures
                .iter()
                .map(|(_, failure, path)| failure.backstage(path.split('?').next().unwrap_or(path)))
                .collect();
            json!({
                "cluster": cluster_json(&report.cluster),
                "resources": resources,
                "podMetrics": [],
                "errors": fetch_errors,
                "detectedErrors": detected.iter().map(Detected::backstage).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "items": items })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Failure, Listed};

    #[test]
    fn objects_by_entity_shape() {
        let cluster = |name: &str| Cluster {
            name: name.into(),
            url: "http://127.0.0.1:1".into(),
            title: Some("Prod".into()),
            dashboard_url: None,
        };
        let mut ok = ClusterReport::new(cluster("prod"));
        let pod = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}});
        for kind in Kind::ALL {
            let items = if kind == Kind::Pods {
                vec![pod.clone()]
            } else {
                vec![]
            };
            ok.add(
                kind,
                "/api/v1/pods?labelSelector=x",
                &Ok(Listed { items, more: false }),
                |_| true,
            );
        }
        let mut down = ClusterReport::new(cluster("legacy"));
        down.add(
            Kind::Pods,
            "/api/v1/pods?labelSelector=x",
            &Err(Failure::Status {
                code: 401,
                reason: None,
                message: None,
            }),
            |_| true,
        );
        let body = workloads(&[ok, down], &[vec![], vec![]]);
        let items = body["items"].as_array().unwrap();
        assert_eq!(
            items[0]["cluster"],
            json!({"name": "prod", "title": "Prod"})
        );
        assert_eq!(items[0]["resources"].as_array().unwrap().len(), 8);
        assert_eq!(
            items[0]["resources"][0],
            json!({"type": "pods", "resources": [pod]})
        );
        assert_eq!(items[0]["errors"], json!([]));
        assert_eq!(items[0]["podMetrics"], json!([]));
        assert_eq!(
            items[1]["errors"],
            json!([{"errorType": "UNAUTHORIZED_ERROR", "statusCode": 401, "resourcePath": "/api/v1/pods"}])
        );
        assert_eq!(
            clusters(&[cluster("prod")]),
            json!({"items": [{"name": "prod", "title": "Prod", "authProvider": "serviceAccount"}]})
        );
    }
}
