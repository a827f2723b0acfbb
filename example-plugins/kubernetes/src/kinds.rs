//! The kinds of objects the plugin reads, and their list URLs in the real
//! Kubernetes API.

use crate::selector::Selector;

/// One kind of object, named as Backstage's `resources[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `pods` (v1).
    Pods,
    /// `services` (v1).
    Services,
    /// `deployments` (apps/v1).
    Deployments,
    /// `replicasets` (apps/v1).
    ReplicaSets,
    /// `horizontalpodautoscalers` (autoscaling/v2).
    Hpas,
    /// `jobs` (batch/v1).
    Jobs,
    /// `cronjobs` (batch/v1).
    CronJobs,
    /// `ingresses` (networking.k8s.io/v1).
    Ingresses,
}

impl Kind {
    /// Every kind, in the order the tab and Backstage's answer list them.
    pub const ALL: [Kind; 8] = [
        Kind::Pods,
        Kind::Services,
        Kind::Deployments,
        Kind::ReplicaSets,
        Kind::Hpas,
        Kind::Jobs,
        Kind::CronJobs,
        Kind::Ingresses,
    ];

    /// The kinds error detection reads.
    pub const HEALTH: [Kind; 4] = [Kind::Pods, Kind::Deployments, Kind::Hpas, Kind::Jobs];

    /// The resource's plural name, as in URLs and Backstage's `type`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Pods => "pods",
            Kind::Services => "services",
            Kind::Deployments => "deployments",
            Kind::ReplicaSets => "replicasets",
            Kind::Hpas => "horizontalpodautoscalers",
            Kind::Jobs => "jobs",
            Kind::CronJobs => "cronjobs",
            Kind::Ingresses => "ingresses",
        }
    }

    /// The object's `kind`.
    pub fn kind(self) -> &'static str {
        match self {
            Kind::Pods => "Pod",
            Kind::Services => "Service",
            Kind::Deployments => "Deployment",
            Kind::ReplicaSets => "ReplicaSet",
            Kind::Hpas => "HorizontalPodAutoscaler",
            Kind::Jobs => "Job",
            Kind::CronJobs => "CronJob",
            Kind::Ingresses => "Ingress",
        }
    }

    /// The object's `apiVersion`.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Pods | Kind::Services => "v1",
            Kind::Deployments | Kind::ReplicaSets => "apps/v1",
            Kind::Hpas => "autoscaling/v2",
            Kind::Jobs | Kind::CronJobs => "batch/v1",
            Kind::Ingresses => "networking.k8s.io/v1",
        }
    }

    /// `/api/v1` or `/apis/<group>/<version>`.
    fn prefix(self) -> &'static str {
        match self {
            Kind::Pods | Kind::Services => "/api/v1",
            Kind::Deployments | Kind::ReplicaSets => "/apis/apps/v1",
            Kind::Hpas => "/apis/autoscaling/v2",
            Kind::Jobs | Kind::CronJobs => "/apis/batch/v1",
            Kind::Ingresses => "/apis/networking.k8s.io/v1",
        }
    }

    /// The path (and query) listing the objects `selector` selects, in
    /// `namespace` or across namespaces, at most `limit` of them.
    pub fn list_path(self, namespace: Option<&str>, selector: &Selector, limit: u32) -> String {
        let scope = namespace.map_or_else(String::new, |ns| format!("/namespaces/{ns}"));
        format!(
            "{}{scope}/{}?labelSelector={}&limit={limit}",
            self.prefix(),
            self.plural(),
            selector.query_value()
        )
    }

    /// The path of one object.
    pub fn object_path(self, namespace: &str, name: &str) -> String {
        format!(
            "{}/namespaces/{namespace}/{}/{name}",
            self.prefix(),
            self.plural()
        )
    }

    /// A short label for headings: `Pods`, `Autoscalers`.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Pods => "Pods",
            Kind::Services => "Services",
            Kind::Deployments => "Deployments",
            Kind::ReplicaSets => "ReplicaSets",
            Kind::Hpas => "Autoscalers",
            Kind::Jobs => "Jobs",
            Kind::CronJobs => "CronJobs",
            Kind::Ingresses => "Ingresses",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_list_urls() {
        let s = Selector::equals("backstage.io/kubernetes-id", "web");
        assert_eq!(
            Kind::Pods.list_path(None, &s, 100),
            "/api/v1/pods?labelSelector=backstage.io%2Fkubernetes-id%3Dweb&limit=100"
        );
        assert_eq!(
            Kind::Deployments.list_path(Some("shop"), &s, 5),
            "/apis/apps/v1/namespaces/shop/deployments?labelSelector=backstage.io%2Fkubernetes-id%3Dweb&limit=5"
        );
        assert!(
            Kind::Hpas
                .list_path(None, &s, 1)
                .starts_with("/apis/autoscaling/v2/horizontalpodautoscalers?")
        );
        assert!(
            Kind::CronJobs
                .list_path(None, &s, 1)
                .starts_with("/apis/batch/v1/cronjobs?")
        );
        assert!(
            Kind::Ingresses
                .list_path(None, &s, 1)
                .starts_with("/apis/networking.k8s.io/v1/ingresses?")
        );
        assert_eq!(
            Kind::Deployments.object_path("payments", "ledger"),
            "/apis/apps/v1/namespaces/payments/deployments/ledger"
        );
    }
}
