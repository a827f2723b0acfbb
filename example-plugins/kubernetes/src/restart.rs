//! The `restart` action: what `kubectl rollout restart` does, for a
//! deployment of the entity the button was on, by someone the policy lets
//! restart that entity's workloads.
//!
//! Nothing posted is trusted: the cluster must be a configured one, the
//! names valid, and the deployment, read again from the cluster, must be
//! selected by the entity's own annotations (and in its namespace, when it
//! names one) before the patch is sent.

use callboard_sdk::{
    Error, fetch, log, permissions,
    ui::{ActionRequest, Notice, Tone},
};
use serde_json::{Value, json};

use crate::{
    cluster,
    kinds::Kind,
    model::Failure,
    selector::{Target, valid_object_name},
    settings::Settings,
};

/// The permission a restart needs, on the entity.
pub const PERMISSION: &str = "kubernetes.restart";

/// The strategic merge patch `kubectl rollout restart` sends.
pub fn patch_body(now_rfc3339: &str) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": now_rfc3339,
    }}}}})
}

/// Checks a restart request's values: `(cluster, namespace, deployment)`.
pub fn values(request: &ActionRequest) -> Result<(String, String, String), Error> {
    let get = |name: &str| {
        request
            .value(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::bad_request(format!("a restart needs a {name}")))
    };
    let (cluster, namespace, deployment) = (get("cluster")?, get("namespace")?, get("deployment")?);
    if !valid_object_name(namespace) || namespace.contains('.') || namespace.len() > 63 {
        return Err(Error::bad_request(format!(
            "{namespace:?} is not a namespace name"
        )));
    }
    if !valid_object_name(deployment) {
        return Err(Error::bad_request(format!(
            "{deployment:?} is not a deployment name"
        )));
    }
    Ok((
        cluster.to_owned(),
        namespace.to_owned(),
        deployment.to_owned(),
    ))
}

fn failure_error(cluster: &str, what: &str, failure: &Failure) -> Error {
    let status = match failure {
        Failure::Status { code: 404, .. } => 404,
        Failure::Status { code: 403, .. } => 403,
        Failure::Timeout => 504,
        _ => 502,
    };
    Error::new(
        status,
        format!("cluster {cluster}: {what}: {}", failure.short()),
    )
}

/// Runs the action.
pub fn run(request: &ActionRequest) -> Result<Notice, Error> {
    let entity = request
        .view
        .entity
        .as_ref()
        .ok_or_else(|| Error::bad_request("a restart is made from an entity's tab"))?;
    let entity_ref = request
        .view
        .entity_ref()
        .ok_or_else(|| Error::bad_request("the entity has no name"))?;
    // The plugin's own permission, on this entity, first.
    permissions::require(PERMISSION, Some(&entity_ref))?;

    let target = match Target::of_entity(entity) {
        Some(Ok(target)) => target,
        Some(Err(why)) => return Err(Error::bad_request(why)),
        None => {
            return Err(Error::bad_request(format!(
                "{entity_ref} has no Kubernetes annotation"
            )));
        }
    };
    let (cluster_name, namespace, deployment) = values(request)?;
    let settings = Settings::load();
    let cluster = settings.cluster(&cluster_name).ok_or_else(|| {
        Error::bad_request(format!("{cluster_name:?} is not a configured cluster"))
    })?;
    if let Some(ns) = &target.namespace
        && *ns != namespace
    {
        return Err(Error::forbidden(format!(
            "deployment {namespace}/{deployment} is not in {entity_ref}'s namespace {ns}"
        )));
    }

    // Read it again: is it really one of the entity's?
    let url = format!(
        "{}{}",
        cluster.url,
        Kind::Deployments.object_path(&namespace, &deployment)
    );
    let what = format!("deployment {namespace}/{deployment}");
    let response = cluster::send(&settings, fetch::get(url.clone()))
        .map_err(|f| failure_error(&cluster.name, &format!("reading {what}"), &f))?;
    if !(200..300).contains(&response.status) {
        let failure = crate::model::status_failure(response.status, &response.body);
        return Err(failure_error(
            &cluster.name,
            &format!("reading {what}"),
            &failure,
        ));
    }
    let current: Value = response.json().map_err(|e| {
        Error::new(
            502,
            format!("cluster {}: reading {what}: {e}", cluster.name),
        )
    })?;
    if current.get("kind").is_some_and(|k| k != "Deployment")
        || current["metadata"]["name"].as_str() != Some(deployment.as_str())
        || current["metadata"]["namespace"].as_str() != Some(namespace.as_str())
        || !target.selects(&current)
    {
        return Err(Error::forbidden(format!(
            "{what} in cluster {} does not belong to {entity_ref}: its labels do not match `{}`",
            cluster.name, target.selector
        )));
    }

    // kubectl rollout restart.
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string();
    let body = serde_json::to_vec(&patch_body(&now)).unwrap_or_default();
    let response = cluster::send(
        &settings,
        fetch::request("PATCH", url)
            .header("content-type", "application/strategic-merge-patch+json")
            .body(body),
    )
    .map_err(|f| failure_error(&cluster.name, &format!("restarting {what}"), &f))?;
    if !(200..300).contains(&response.status) {
        let failure = crate::model::status_failure(response.status, &response.body);
        return Err(failure_error(
            &cluster.name,
            &format!("restarting {what}"),
            &failure,
        ));
    }
    cluster::invalidate(cluster);
    let who = request.principal().name().to_owned();
    log::info(&format!(
        "{who} restarted {what} in cluster {} for {entity_ref}",
        cluster.name
    ));
    Ok(Notice::new(
        Tone::Good,
        format!("Restarting {what} in {}", cluster.name),
        Some(format!(
            "{who} asked for a rollout restart at {now} (kubectl.kubernetes.io/restartedAt): its pods are replaced one by one, as the deployment's strategy allows."
        )),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_kubectl_sends() {
        assert_eq!(
            patch_body("2026-05-04T12:00:00Z").to_string(),
            r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-05-04T12:00:00Z"}}}}}"#
        );
    }
}
