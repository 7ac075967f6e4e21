//! RBAC, asked once per namespace with a SelfSubjectRulesReview (on
//! connect and on every context switch): which of a service's actions the
//! user may take. A denied action's key is shown disabled with the reason;
//! the API server stays the judge of every write.

use super::model::Target;
use crate::event::Denied;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, ResourceRule, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SelfSubjectRulesReview,
    SelfSubjectRulesReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};

/// One permission an action needs: a verb on a resource of an API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
}

const UPDATE_DEPLOYMENTS: Needs = Needs { verb: "update", group: "apps", resource: "deployments" };
const UPDATE_ROUTES: Needs = Needs { verb: "update", group: "gateway.networking.k8s.io", resource: "httproutes" };
const LIST_REPLICA_SETS: Needs = Needs { verb: "list", group: "apps", resource: "replicasets" };

/// What each action (by `Op::name`) needs for this service.
fn needs(target: &Target) -> Vec<(&'static str, Vec<Needs>)> {
    let traffic =
        if target.route.is_some() { vec![UPDATE_DEPLOYMENTS, UPDATE_ROUTES] } else { vec![UPDATE_DEPLOYMENTS] };
    let mut rollback = traffic.clone();
    rollback.push(LIST_REPLICA_SETS);
    // A prototype's deploy changes its primary only.
    let deploy = if target.stage.uses_canary() { traffic.clone() } else { vec![UPDATE_DEPLOYMENTS] };
    vec![
        ("deploy", deploy),
        ("promote", traffic.clone()),
        ("promote-full", traffic),
        ("rollback", rollback),
        ("restart", vec![UPDATE_DEPLOYMENTS]),
    ]
}

fn allows(rules: &[ResourceRule], need: Needs) -> bool {
    let any = |list: Option<&Vec<String>>, want: &str| list.is_some_and(|l| l.iter().any(|i| i == "*" || i == want));
    rules.iter().any(|rule| {
        // A rule limited to some names does not cover every service's objects.
        rule.resource_names.as_ref().is_none_or(Vec::is_empty)
            && rule.verbs.iter().any(|v| v == "*" || v == need.verb)
            && any(rule.api_groups.as_ref(), need.group)
            && any(rule.resources.as_ref(), need.resource)
    })
}

/// The actions the rules deny on this service, each with what is missing.
pub fn denied_ops(rules: &[ResourceRule], target: &Target) -> Vec<Denied> {
    needs(target)
        .into_iter()
        .filter_map(|(op, needs)| {
            let missing: Vec<String> = needs
                .into_iter()
                .filter(|n| !allows(rules, *n))
                .map(|n| {
                    let group = if n.group.is_empty() { String::new() } else { format!(".{}", n.group) };
                    format!("{} {}{group}", n.verb, n.resource)
                })
                .collect();
            (!missing.is_empty()).then(|| Denied {
                op: op.to_owned(),
                reason: format!("RBAC: may not {} in {}", missing.join(", "), target.namespace),
            })
        })
        .collect()
}

/// Every permission some action may need.
const ALL_NEEDS: [Needs; 3] = [UPDATE_DEPLOYMENTS, UPDATE_ROUTES, LIST_REPLICA_SETS];

/// The rules that apply to the user in `namespace`; `None` when the
/// server could not say. When the rules review is incomplete (webhook or
/// cloud IAM authorisers decide too), each permission an action needs is
/// asked on its own with a SelfSubjectAccessReview, and the answers stand
/// in for the rules.
pub async fn review(client: &Client, namespace: &str) -> Result<Option<Vec<ResourceRule>>, String> {
    let api: Api<SelfSubjectRulesReview> = Api::all(client.clone());
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec { namespace: Some(namespace.to_owned()) },
        ..SelfSubjectRulesReview::default()
    };
    let answer = api.create(&PostParams::default(), &review).await.map_err(|e| e.to_string())?;
    let status = answer.status.unwrap_or_default();
    if !status.incomplete {
        return Ok(Some(status.resource_rules));
    }
    let access: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut rules = Vec::new();
    for need in ALL_NEEDS {
        let question = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_owned()),
                    verb: Some(need.verb.to_owned()),
                    group: Some(need.group.to_owned()),
                    resource: Some(need.resource.to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let Ok(answer) = access.create(&PostParams::default(), &question).await else { return Ok(None) };
        let status = answer.status.unwrap_or_default();
        if !status.allowed && status.evaluation_error.as_deref().is_some_and(|e| !e.is_empty()) {
            // The authoriser could not decide: unknown, not denied.
            return Ok(None);
        }
        if status.allowed {
            rules.push(ResourceRule {
                verbs: vec![need.verb.to_owned()],
                api_groups: Some(vec![need.group.to_owned()]),
                resources: Some(vec![need.resource.to_owned()]),
                resource_names: None,
            });
        }
    }
    Ok(Some(rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> ResourceRule {
        let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ResourceRule {
            verbs: owned(verbs),
            api_groups: Some(owned(groups)),
            resources: Some(owned(resources)),
            resource_names: None,
        }
    }

    fn target(route: Option<&str>) -> Target {
        let config: crate::config::Config =
            toml::from_str("[[service]]\nname = \"checkout\"\nstage = \"production\"\n").expect("a config");
        let mut target = super::super::model::discover(&config, &["shop".into()], &[], &[]).remove(0);
        target.route = route.map(str::to_owned);
        target
    }

    #[test]
    fn a_viewer_may_do_nothing_and_an_operator_everything() {
        let viewer = [rule(&["get", "list", "watch"], &["*"], &["*"])];
        let denied = denied_ops(&viewer, &target(Some("checkout")));
        assert_eq!(
            denied.iter().map(|d| d.op.as_str()).collect::<Vec<_>>(),
            ["deploy", "promote", "promote-full", "rollback", "restart"]
        );
        assert_eq!(
            denied[0].reason,
            "RBAC: may not update deployments.apps, update httproutes.gateway.networking.k8s.io in shop"
        );
        let operator =
            [rule(&["*"], &["apps", "gateway.networking.k8s.io"], &["deployments", "replicasets", "httproutes"])];
        assert!(denied_ops(&operator, &target(Some("checkout"))).is_empty());
    }

    #[test]
    fn without_a_route_promotion_needs_only_deployments() {
        let deployments = [rule(&["update", "list"], &["apps"], &["deployments", "replicasets"])];
        assert!(denied_ops(&deployments, &target(None)).is_empty());
        let denied = denied_ops(&deployments, &target(Some("checkout")));
        assert_eq!(
            denied.iter().map(|d| d.op.as_str()).collect::<Vec<_>>(),
            ["deploy", "promote", "promote-full", "rollback"]
        );
    }

    #[test]
    fn named_rules_do_not_count() {
        let mut named = rule(&["*"], &["*"], &["*"]);
        named.resource_names = Some(vec!["other".into()]);
        assert_eq!(denied_ops(&[named], &target(None)).len(), 5);
    }
}
