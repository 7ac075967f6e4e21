//! Dev containers: a prototype's primary as one local container, labelled
//! `cockpit.dev/service=<name>`. Deploying creates a new container with the
//! new image (the old one is stopped and removed first), so a restart is
//! always a new container.
//!
//! The images a service's containers ran are kept on the container itself
//! (label `cockpit.dev/revisions`, newest first), so the revision history
//! and undo survive a restart of cockpit. A container's state is reported
//! as a `RolloutStatus`: running is complete, created or restarting is
//! progressing, exited non-zero is failed, stopped by cockpit is paused.
//! A container the engine ended is told in Docker's words: its exit code,
//! the signal that code means (137: killed), whether the kernel OOM-killed
//! it, and when it exited.

use crate::config::DevConfig;
use crate::domain::Timestamp;
use crate::domain::rollout::{Condition, ReplicaCounts, Revision, RolloutPhase, RolloutStatus};
use bollard::Docker;
use bollard::errors::Error;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, HostConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use std::collections::HashMap;

/// The label that marks a service's dev container.
pub const LABEL_SERVICE: &str = "cockpit.dev/service";
/// The label holding the revision history: `number@millis@image,…`, newest first.
pub const LABEL_REVISIONS: &str = "cockpit.dev/revisions";
/// Revisions kept.
pub const REVISIONS: usize = 10;
/// Seconds a container gets to stop before it is killed.
const STOP_GRACE: i32 = 2;

/// A service's dev container, as inspected.
#[derive(Debug, Clone, PartialEq)]
pub struct DevContainer {
    pub id: String,
    pub name: String,
    /// The image reference it was created with.
    pub image: String,
    /// Newest first; the first is the container's own image.
    pub revisions: Vec<Revision>,
    pub status: String,
    pub running: bool,
    pub exit_code: i64,
    pub restart_count: i64,
    pub error: String,
    /// The kernel killed it for want of memory (`State.OOMKilled`).
    pub oom_killed: bool,
    /// When it last exited (`State.FinishedAt`), once it has.
    pub finished: Option<Timestamp>,
}

/// The newest container labelled for `service`, any state.
pub async fn current(docker: &Docker, service: &str) -> Result<Option<DevContainer>, Error> {
    let filters = HashMap::from([("label", vec![format!("{LABEL_SERVICE}={service}")])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let containers = docker.list_containers(Some(options)).await?;
    let newest = containers.into_iter().filter_map(|c| Some((c.created.unwrap_or(0), c.id?))).max();
    match newest {
        Some((_, id)) => inspect(docker, &id).await,
        None => Ok(None),
    }
}

/// A container by id; gone is `None`.
pub async fn inspect(docker: &Docker, id: &str) -> Result<Option<DevContainer>, Error> {
    match docker.inspect_container(id, None).await {
        Ok(found) => Ok(Some(from_inspect(found))),
        Err(Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn from_inspect(found: ContainerInspectResponse) -> DevContainer {
    let config = found.config.unwrap_or_default();
    let labels = config.labels.unwrap_or_default();
    let state = found.state.unwrap_or_default();
    let image = config.image.unwrap_or_default();
    let mut revisions = labels.get(LABEL_REVISIONS).map(|l| parse_revisions(l)).unwrap_or_default();
    if revisions.first().is_none_or(|r| r.image != image) {
        // A container made by hand with our label: its image is its history.
        revisions = vec![Revision { number: 1, image: image.clone(), created: Timestamp(0) }];
    }
    DevContainer {
        id: found.id.unwrap_or_default(),
        name: found.name.unwrap_or_default().trim_start_matches('/').to_owned(),
        image,
        revisions,
        status: state.status.map_or("unknown", status_name).to_owned(),
        running: state.running.unwrap_or(false),
        exit_code: state.exit_code.unwrap_or(0),
        restart_count: found.restart_count.unwrap_or(0),
        error: state.error.unwrap_or_default(),
        oom_killed: state.oom_killed.unwrap_or(false),
        // Never exited: the engine says `0001-01-01T00:00:00Z`.
        finished: state.finished_at.as_deref().and_then(Timestamp::parse_rfc3339).filter(|t| t.0 > 0),
    }
}

fn status_name(status: ContainerStateStatusEnum) -> &'static str {
    match status {
        ContainerStateStatusEnum::EMPTY => "unknown",
        ContainerStateStatusEnum::CREATED => "created",
        ContainerStateStatusEnum::RUNNING => "running",
        ContainerStateStatusEnum::PAUSED => "paused",
        ContainerStateStatusEnum::RESTARTING => "restarting",
        ContainerStateStatusEnum::REMOVING => "removing",
        ContainerStateStatusEnum::EXITED => "exited",
        ContainerStateStatusEnum::DEAD => "dead",
        ContainerStateStatusEnum::STOPPING => "stopping",
    }
}

pub fn parse_revisions(label: &str) -> Vec<Revision> {
    label
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.splitn(3, '@');
            let number = parts.next()?.parse().ok()?;
            let created = Timestamp(parts.next()?.parse().ok()?);
            let image = parts.next()?.to_owned();
            Some(Revision { number, image, created })
        })
        .collect()
}

pub fn format_revisions(revisions: &[Revision]) -> String {
    revisions.iter().map(|r| format!("{}@{}@{}", r.number, r.created.0, r.image)).collect::<Vec<_>>().join(",")
}

/// The history after deploying `image` at `now`: a new revision on top; an
/// image deployed before moves up, as a Deployment's undo does.
pub fn push_revision(revisions: &[Revision], image: &str, now: Timestamp) -> Vec<Revision> {
    let number = revisions.iter().map(|r| r.number).max().unwrap_or(0) + 1;
    let mut next = vec![Revision { number, image: image.to_owned(), created: now }];
    next.extend(revisions.iter().filter(|r| r.image != image).cloned());
    next.truncate(REVISIONS);
    next
}

/// The rollout pane's view of a dev container.
pub fn status(container: &DevContainer, stopped_by_user: bool) -> RolloutStatus {
    let c = container;
    let phase = if stopped_by_user && !c.running {
        RolloutPhase::Paused
    } else {
        match c.status.as_str() {
            "running" => RolloutPhase::Complete,
            "exited" | "dead" if c.exit_code != 0 => RolloutPhase::Failed,
            "exited" => RolloutPhase::Complete,
            "paused" => RolloutPhase::Paused,
            _ => RolloutPhase::Progressing,
        }
    };
    let ready = u32::from(c.running);
    let ended = matches!(c.status.as_str(), "exited" | "dead");
    let message = match c.status.as_str() {
        "running" => format!("container {} running, {} restarts", short(&c.id), c.restart_count),
        _ if ended => {
            // What matters first, as the pane may cut the rest.
            let how = match (c.oom_killed, signal(c.exit_code)) {
                (true, _) => " (OOM-killed)".to_owned(),
                (false, Some((_, word))) => format!(" ({word})"),
                (false, None) => String::new(),
            };
            let at = c.finished.map_or_else(String::new, |t| format!(" at {}", t.clock()));
            let error = if c.error.is_empty() { String::new() } else { format!(": {}", c.error) };
            format!(
                "exited with code {}{how}{at}{error}; container {}, {} restarts",
                c.exit_code,
                short(&c.id),
                c.restart_count
            )
        }
        other => format!("container {} {other}", short(&c.id)),
    };
    let reason = if stopped_by_user && !c.running {
        "StoppedByUser".into()
    } else if ended && (c.exit_code != 0 || c.oom_killed) {
        ended_reason(c)
    } else {
        c.status.clone()
    };
    let generation = c.revisions.first().map_or(1, |r| r.number);
    RolloutStatus {
        phase,
        generation,
        observed_generation: generation,
        replicas: ReplicaCounts { desired: 1, total: 1, updated: 1, ready, available: ready },
        image: c.image.clone(),
        revisions: c.revisions.clone(),
        conditions: vec![Condition { kind: "Container".into(), ok: c.running, reason, message }],
    }
}

/// A dev service without a container yet: deploy starts one.
pub fn not_created(image: &str) -> RolloutStatus {
    RolloutStatus {
        phase: RolloutPhase::Paused,
        generation: 0,
        observed_generation: 0,
        replicas: ReplicaCounts { desired: 1, ..ReplicaCounts::default() },
        image: image.to_owned(),
        revisions: Vec::new(),
        conditions: vec![Condition {
            kind: "Container".into(),
            ok: false,
            reason: "NotCreated".into(),
            message: "no dev container yet: deploy (d) starts one".into(),
        }],
    }
}

/// Why a container ended, as one word where Docker has one: `OOMKilled`
/// (its inspect field), the signal a code past 128 means (`Killed` for
/// 137), else `docker ps`'s `Exited (3)`.
fn ended_reason(c: &DevContainer) -> String {
    if c.oom_killed {
        return "OOMKilled".into();
    }
    if c.status == "dead" {
        return "Dead".into();
    }
    match signal(c.exit_code) {
        Some((reason, _)) => reason.to_owned(),
        None => format!("Exited ({})", c.exit_code),
    }
}

/// A shell's exit code for a process ended by a signal (128 + its number):
/// the reason and the word for it.
fn signal(code: i64) -> Option<(String, String)> {
    let number = code.checked_sub(128).filter(|n| (1..=64).contains(n))?;
    let (reason, word) = match number {
        1 => ("Hangup", "hangup"),
        2 => ("Interrupted", "interrupted"),
        3 => ("Quit", "quit"),
        6 => ("Aborted", "aborted"),
        9 => ("Killed", "killed"),
        11 => ("SegmentationFault", "segmentation fault"),
        13 => ("BrokenPipe", "broken pipe"),
        15 => ("Terminated", "terminated"),
        _ => return Some((format!("Signal{number}"), format!("signal {number}"))),
    };
    Some((reason.to_owned(), word.to_owned()))
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Stops a container, giving it `STOP_GRACE` seconds. Already stopped or
/// gone is fine.
pub async fn stop(docker: &Docker, id: &str) -> Result<(), Error> {
    let options = StopContainerOptionsBuilder::default().t(STOP_GRACE).build();
    match docker.stop_container(id, Some(options)).await {
        Ok(()) | Err(Error::DockerResponseServerError { status_code: 304 | 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn remove(docker: &Docker, id: &str) -> Result<(), Error> {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) | Err(Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates and starts `service`'s dev container running `image`. Returns
/// its id and name.
pub async fn create(
    docker: &Docker,
    service: &str,
    dev: &DevConfig,
    image: &str,
    revisions: &[Revision],
    network: Option<&str>,
    now: Timestamp,
) -> Result<(String, String), Error> {
    let name = format!("{service}-dev-{}", radix36(now.0.max(0) as u64));
    let labels = HashMap::from([
        (LABEL_SERVICE.to_owned(), service.to_owned()),
        (LABEL_REVISIONS.to_owned(), format_revisions(revisions)),
    ]);
    // Ports are published only where the container has a network to publish on.
    let publish = network.is_none_or(|n| n != "none") && !dev.ports.is_empty();
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if publish {
        for mapping in &dev.ports {
            let (host, container) = mapping.split_once(':').unwrap_or((mapping, mapping));
            let key = if container.contains('/') { container.to_owned() } else { format!("{container}/tcp") };
            exposed.push(key.clone());
            bindings
                .entry(key)
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(PortBinding { host_ip: None, host_port: Some(host.to_owned()) });
        }
    }
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: (!dev.command.is_empty()).then(|| dev.command.clone()),
        env: Some(dev.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: publish.then_some(exposed),
        host_config: Some(HostConfig {
            network_mode: network.map(str::to_owned),
            port_bindings: publish.then_some(bindings),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let created = docker.create_container(Some(options), body).await?;
    if let Err(e) = docker.start_container(&created.id, None).await {
        let _ = remove(docker, &created.id).await;
        return Err(e);
    }
    Ok((created.id, name))
}

fn radix36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_round_trip_and_undo_moves_an_image_up() {
        let now = Timestamp(1_000);
        let one = push_revision(&[], "api:a", now);
        let two = push_revision(&one, "api:b", now);
        assert_eq!(parse_revisions(&format_revisions(&two)), two);
        let undone = push_revision(&two, "api:a", now);
        let images: Vec<_> = undone.iter().map(|r| (r.number, r.image.as_str())).collect();
        assert_eq!(images, [(3, "api:a"), (2, "api:b")]);
    }

    #[test]
    fn container_states_map_to_phases() {
        let mut c = DevContainer {
            id: "0123456789abcdef".into(),
            name: "api-dev-1".into(),
            image: "api:a".into(),
            revisions: push_revision(&[], "api:a", Timestamp(0)),
            status: "running".into(),
            running: true,
            exit_code: 0,
            restart_count: 0,
            error: String::new(),
            oom_killed: false,
            finished: None,
        };
        assert_eq!(status(&c, false).phase, RolloutPhase::Complete);
        c.status = "created".into();
        c.running = false;
        assert_eq!(status(&c, false).phase, RolloutPhase::Progressing);
        c.status = "exited".into();
        c.exit_code = 3;
        let failed = status(&c, false);
        assert_eq!(failed.phase, RolloutPhase::Failed);
        assert!(failed.conditions[0].message.contains("exited with code 3"), "{failed:?}");
        assert_eq!(failed.conditions[0].reason, "Exited (3)");
        assert_eq!(status(&c, true).phase, RolloutPhase::Paused);
    }

    #[test]
    fn a_container_the_engine_ended_is_told_in_dockers_words() {
        let mut c = DevContainer {
            id: "0123456789abcdef".into(),
            name: "api-dev-1".into(),
            image: "api:a".into(),
            revisions: push_revision(&[], "api:a", Timestamp(0)),
            status: "exited".into(),
            running: false,
            exit_code: 137,
            restart_count: 0,
            error: String::new(),
            oom_killed: false,
            finished: Timestamp::parse_rfc3339("2026-11-26T08:08:24.640720509Z"),
        };
        let killed = status(&c, false);
        assert_eq!(killed.phase, RolloutPhase::Failed);
        let condition = &killed.conditions[0];
        assert_eq!(condition.reason, "Killed");
        assert_eq!(condition.message, "exited with code 137 (killed) at 08:08:24; container 0123456789ab, 0 restarts");
        assert!(!condition.message.contains("deadline"));

        c.oom_killed = true;
        let oom = status(&c, false);
        assert_eq!(oom.conditions[0].reason, "OOMKilled");
        assert!(oom.conditions[0].message.starts_with("exited with code 137 (OOM-killed) at 08:08:24"), "{oom:?}");

        c.oom_killed = false;
        c.exit_code = 143;
        assert_eq!(status(&c, false).conditions[0].reason, "Terminated");
        c.exit_code = 200;
        assert_eq!(status(&c, false).conditions[0].reason, "Exited (200)");
        // Exited cleanly: complete, no failure words.
        c.exit_code = 0;
        let done = status(&c, false);
        assert_eq!((done.phase, done.conditions[0].reason.as_str()), (RolloutPhase::Complete, "exited"));
    }
}
