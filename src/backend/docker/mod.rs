//! Docker as a workload backend: rebuilds with live progress, and dev
//! containers for prototypes.
//!
//! - `DockerWorkloads` is how the executor changes things: `Plan::Rebuild`
//!   builds `[service.build]`'s image, `Plan::DeployPrimary` (re)creates
//!   the service's dev container with an image, `Plan::UndoPrimary` goes
//!   back to the image before; `restart` and `stop` are there for callers
//!   that want them (no key sends them yet).
//! - `run` is its source task: it pings the engine (with backoff while it
//!   is away) and reports the connection, reports each dev container's
//!   state as a rollout, and keeps one log follower per dev container.
//!
//! The engine is found like the docker CLI finds it: `[docker] host`, else
//! `DOCKER_HOST`, else the local socket. The API version is negotiated on
//! every (re)connection, since older engines refuse bollard's default.
//!
//! - `context`: the build context tar, `.dockerignore`, the build's tag;
//! - `build`: the build stream read into `BuildStatus` updates;
//! - `dev`: dev containers, their labels, their state as a rollout;
//! - `logs`: following a container's logs into `SourceEvent::Logs`.

mod build;
mod context;
mod dev;
mod logs;

pub use build::{BuildSpec, Progress, parse_step, repository};
pub use context::{DockerIgnore, pack, tag_for, timestamp_tag};
pub use dev::{DevContainer, LABEL_REVISIONS, LABEL_SERVICE};

use crate::backend::{ActionContext, BackendError, Change, Facts, NoWorkloads, Plan, Snapshot, Workloads};
use crate::clock::Clock;
use crate::config::{Config, DevConfig};
use crate::domain::canary::CanaryPlan;
use crate::domain::rollout::RolloutStatus;
use crate::domain::{Stage, Timestamp};
use crate::event::{ConnectionState, SourceEvent};
use crate::state::Msg;
use bollard::Docker;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// The name this source reports its connection under.
pub const SOURCE: &str = "docker";
/// The socket the docker CLI uses when nothing else is said.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// A ping that takes longer than this counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// Reconnection backoff: from the first to the last, doubling.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// `[docker] host`, else `DOCKER_HOST`, else the local socket. A bare path
/// is a unix socket.
pub fn resolve_host(configured: Option<&str>) -> String {
    let host = configured
        .map(str::to_owned)
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_HOST.to_owned());
    if host.starts_with('/') { format!("unix://{host}") } else { host }
}

/// What an engine error means to a user: the engine's own message when it
/// answered, else why it could not be reached.
pub fn describe(error: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match error {
        E::DockerResponseServerError { message, .. } => message.trim().to_owned(),
        E::SocketNotFoundError(path) => format!("no socket at {path}"),
        other => other.to_string(),
    }
}

/// Whether the error says the engine could not be reached (as opposed to
/// refusing a request).
fn unreachable(error: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    matches!(
        error,
        E::SocketNotFoundError(_)
            | E::HyperLegacyError { .. }
            | E::HyperResponseError { .. }
            | E::IOError { .. }
            | E::RequestTimeoutError
    )
}

fn backend_error(error: bollard::errors::Error) -> BackendError {
    if unreachable(&error) {
        BackendError::Unavailable(format!("docker is not reachable: {}", describe(&error)))
    } else {
        BackendError::Failed(format!("docker: {}", describe(&error)))
    }
}

/// Settings that are not in the config: how containers are networked and
/// how often the engine is polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerOptions {
    /// Network mode for dev containers and build steps; `None` is the
    /// engine's default. With `none`, ports are not published.
    pub network_mode: Option<String>,
    /// How often container state is read while the engine is reachable.
    pub poll: Duration,
    pub tail_lines: u32,
    pub max_line: usize,
}

impl Default for DockerOptions {
    fn default() -> Self {
        DockerOptions {
            network_mode: None,
            poll: Duration::from_secs(1),
            tail_lines: 100,
            max_line: crate::domain::logs::DEFAULT_MAX_LINE,
        }
    }
}

/// A service as this backend knows it.
#[derive(Debug, Clone)]
struct Target {
    stage: Stage,
    plan: CanaryPlan,
    build: Option<BuildSpec>,
    dev: Option<DevConfig>,
}

impl Target {
    /// The image a dev container starts from when none was deployed yet.
    fn default_image(&self) -> String {
        match (self.dev.as_ref().and_then(|d| d.image.clone()), &self.build) {
            (Some(image), _) => image,
            (None, Some(build)) => build.image.clone(),
            (None, None) => String::new(),
        }
    }
}

/// What the source task and the executor share, behind a std mutex held
/// for a moment only, never across an await.
#[derive(Debug, Default)]
struct Shared {
    building: HashSet<String>,
    /// Containers stopped on purpose: shown as paused, not failed.
    stopped: HashSet<String>,
    followers: HashMap<String, logs::Follower>,
    /// Containers this cockpit created: their logs are read from the start.
    created_here: HashSet<String>,
    /// The last rollout sent per service.
    reported: HashMap<String, RolloutStatus>,
    /// The negotiated client, while the engine is reachable.
    client: Option<Docker>,
}

struct Inner {
    host: String,
    targets: HashMap<String, Target>,
    clock: Clock,
    events: mpsc::Sender<Msg>,
    options: DockerOptions,
    shared: Mutex<Shared>,
    /// Held by anything that changes or reads a service's container, so
    /// the poller never follows a container a deploy is replacing.
    ops: tokio::sync::Mutex<()>,
}

/// The Docker workload backend; cheap to clone.
#[derive(Clone)]
pub struct DockerWorkloads {
    inner: Arc<Inner>,
}

impl DockerWorkloads {
    /// The config's services with `[service.build]` or `[service.dev]`;
    /// build contexts are relative to `base_dir` (the config file's
    /// directory, or the working directory). Events (builds, logs,
    /// rollouts, the connection) go to `events`.
    pub fn new(
        config: &Config,
        base_dir: &Path,
        clock: Clock,
        events: mpsc::Sender<Msg>,
        options: DockerOptions,
    ) -> DockerWorkloads {
        let host = resolve_host(config.docker.as_ref().and_then(|d| d.host.as_deref()));
        let targets = config
            .services
            .iter()
            .filter(|s| s.build.is_some() || s.dev.is_some())
            .map(|s| {
                let build = s.build.as_ref().map(|b| BuildSpec {
                    context: base_dir.join(&b.context),
                    dockerfile: b.dockerfile.clone(),
                    image: b.image.clone(),
                });
                let plan = s.canary.resolve(&config.canary).steps;
                (s.name.clone(), Target { stage: s.stage, plan, build, dev: s.dev.clone() })
            })
            .collect();
        DockerWorkloads {
            inner: Arc::new(Inner {
                host,
                targets,
                clock,
                events,
                options,
                shared: Mutex::new(Shared::default()),
                ops: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The engine's address, for the header.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// Whether `service` has a build or a dev container here.
    pub fn handles(&self, service: &str) -> bool {
        self.inner.targets.contains_key(service)
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        // Every change under the lock is whole, so a poisoned lock is usable.
        self.inner.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn send(&self, event: SourceEvent) -> bool {
        self.inner.events.send(Msg::Source(event)).await.is_ok()
    }

    /// A client that answered a ping just now; else why not.
    async fn reachable(&self) -> Result<Docker, String> {
        let cached = self.shared().client.clone();
        let docker = match cached {
            Some(docker) => docker,
            None => {
                let docker = Docker::connect_with_host(&self.inner.host).map_err(|e| describe(&e))?;
                let docker = tokio::time::timeout(PING_TIMEOUT, docker.negotiate_version())
                    .await
                    .map_err(|_| format!("{} did not answer within {}s", self.inner.host, PING_TIMEOUT.as_secs()))?
                    .map_err(|e| describe(&e))?;
                self.shared().client = Some(docker.clone());
                docker
            }
        };
        let ping = tokio::time::timeout(PING_TIMEOUT, docker.ping()).await;
        match ping {
            Ok(Ok(_)) => Ok(docker),
            failed => {
                // Negotiate again next time: the engine may come back as another version.
                self.shared().client = None;
                Err(match failed {
                    Ok(Err(e)) => describe(&e),
                    _ => format!("{} did not answer within {}s", self.inner.host, PING_TIMEOUT.as_secs()),
                })
            }
        }
    }

    async fn client(&self) -> Result<Docker, BackendError> {
        self.reachable().await.map_err(|reason| BackendError::Unavailable(format!("docker is not reachable: {reason}")))
    }

    fn target(&self, service: &str) -> Option<&Target> {
        self.inner.targets.get(service)
    }

    /// Whether `image` exists in this engine without a registry digest: built
    /// here and never pushed (or pulled), so no other machine can pull it.
    /// False when the engine cannot tell.
    pub async fn never_pushed(&self, image: &str) -> bool {
        let Ok(docker) = self.client().await else { return false };
        match docker.inspect_image(image).await {
            Ok(found) => found.repo_digests.is_none_or(|digests| digests.is_empty()),
            Err(_) => false,
        }
    }

    /// Starts a rebuild of `service`'s image; progress arrives as
    /// `SourceEvent::Build`. Returns once the build has started.
    pub async fn rebuild(&self, service: &str) -> Result<Change, BackendError> {
        let Some(spec) = self.target(service).and_then(|t| t.build.clone()) else {
            return Err(BackendError::Unsupported(format!(
                "{service} has no [service.build] section: nothing to rebuild"
            )));
        };
        let docker = self.client().await?;
        if !self.shared().building.insert(service.to_owned()) {
            return Err(BackendError::Unsupported(format!("a build of {service} is already running")));
        }
        let summary = format!("building {} from {}", repository(&spec.image), spec.context.display());
        let this = self.clone();
        let name = service.to_owned();
        tokio::spawn(async move {
            let inner = &this.inner;
            let network = inner.options.network_mode.clone();
            let status = build::run(
                docker,
                name.clone(),
                spec,
                network,
                inner.clock,
                inner.events.clone(),
                inner.options.max_line,
            )
            .await;
            this.shared().building.remove(&name);
            this.send(SourceEvent::Build { service: name, build: status }).await;
        });
        Ok(Change { before: Snapshot::default(), after: Snapshot::default(), summary })
    }

    fn dev_target(&self, service: &str) -> Result<(Target, DevConfig), BackendError> {
        let target =
            self.target(service).cloned().ok_or_else(|| BackendError::NotFound(format!("service {service}")))?;
        let dev = target.dev.clone().ok_or_else(|| {
            BackendError::Unsupported(format!(
                "{service} has no [service.dev] section: cockpit runs no container for it"
            ))
        })?;
        Ok((target, dev))
    }

    /// (Re)creates `service`'s dev container running `image`.
    pub async fn deploy(&self, service: &str, image: &str) -> Result<Change, BackendError> {
        let (_, dev) = self.dev_target(service)?;
        let _ops = self.inner.ops.lock().await;
        let docker = self.client().await?;
        match docker.inspect_image(image).await {
            Ok(_) => {}
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                return Err(BackendError::NotFound(format!("image {image} (rebuild with r, or pull it)")));
            }
            Err(e) => return Err(backend_error(e)),
        }
        let old = dev::current(&docker, service).await.map_err(backend_error)?;
        let history = old.as_ref().map(|c| c.revisions.clone()).unwrap_or_default();
        let revisions = dev::push_revision(&history, image, self.inner.clock.now());
        let new = self.replace(&docker, service, &dev, image, &revisions, old.as_ref()).await?;
        Ok(change(old.as_ref(), &new, format!("{} → {image}", old.as_ref().map_or("nothing", |c| c.image.as_str()))))
    }

    /// A new container with the same image (and history).
    pub async fn restart(&self, service: &str) -> Result<Change, BackendError> {
        let (_, dev) = self.dev_target(service)?;
        let _ops = self.inner.ops.lock().await;
        let docker = self.client().await?;
        let old = running(&docker, service).await?;
        let new = self.replace(&docker, service, &dev, &old.image, &old.revisions, Some(&old)).await?;
        Ok(change(Some(&old), &new, format!("restarted {} as {}", old.name, new.name)))
    }

    /// Stops the dev container; it stays, shown as paused, until the next deploy.
    pub async fn stop(&self, service: &str) -> Result<Change, BackendError> {
        self.dev_target(service)?;
        let _ops = self.inner.ops.lock().await;
        let docker = self.client().await?;
        let old = running(&docker, service).await?;
        self.shared().stopped.insert(old.id.clone());
        dev::stop(&docker, &old.id).await.map_err(backend_error)?;
        let now = dev::inspect(&docker, &old.id).await.map_err(backend_error)?.unwrap_or_else(|| old.clone());
        self.report(service, dev::status(&now, true)).await;
        Ok(change(Some(&old), &now, format!("stopped {}", old.name)))
    }

    /// Stops and removes `old` (its logs drained first), then creates and
    /// starts the new container and follows its logs from the start.
    async fn replace(
        &self,
        docker: &Docker,
        service: &str,
        dev: &DevConfig,
        image: &str,
        revisions: &[crate::domain::Revision],
        old: Option<&DevContainer>,
    ) -> Result<DevContainer, BackendError> {
        if let Some(old) = old {
            dev::stop(docker, &old.id).await.map_err(backend_error)?;
            // The old container's last lines come before the new one's.
            let follower = self.shared().followers.remove(service);
            if let Some(mut follower) = follower {
                // A stream still open after the container stopped is ended.
                if tokio::time::timeout(Duration::from_secs(5), &mut follower.handle).await.is_err() {
                    follower.handle.abort();
                }
            }
            dev::remove(docker, &old.id).await.map_err(backend_error)?;
            self.shared().stopped.remove(&old.id);
        }
        let network = self.inner.options.network_mode.as_deref();
        let now = self.inner.clock.now();
        let (id, _name) =
            dev::create(docker, service, dev, image, revisions, network, now).await.map_err(backend_error)?;
        self.shared().created_here.insert(id.clone());
        let new = dev::inspect(docker, &id)
            .await
            .map_err(backend_error)?
            .ok_or_else(|| BackendError::Failed(format!("the new container of {service} vanished")))?;
        self.ensure_following(docker, service, &new);
        self.report(service, dev::status(&new, false)).await;
        Ok(new)
    }

    /// Sends `status` unless it is what was sent last.
    async fn report(&self, service: &str, status: RolloutStatus) {
        let changed = {
            let mut shared = self.shared();
            if shared.reported.get(service) == Some(&status) {
                false
            } else {
                shared.reported.insert(service.to_owned(), status.clone());
                true
            }
        };
        if changed {
            self.send(SourceEvent::Rollout { service: service.to_owned(), status }).await;
        }
    }

    /// Makes sure `container`'s logs are being followed: a new follower
    /// for a new container (after the previous one), a resumed one for a
    /// stream that broke while the container runs on.
    fn ensure_following(&self, docker: &Docker, service: &str, container: &DevContainer) {
        let mut shared = self.shared();
        let start = match shared.followers.get(service) {
            Some(f) if f.container == container.id => {
                let broke = f.handle.is_finished() && f.failed.load(Ordering::SeqCst);
                if !(broke && container.running) {
                    return;
                }
                logs::Start::After(f.last.load(Ordering::SeqCst))
            }
            _ if shared.created_here.contains(&container.id) => logs::Start::All,
            _ => logs::Start::Tail(self.inner.options.tail_lines),
        };
        let previous = shared.followers.remove(service).map(|f| f.handle);
        let follower = logs::spawn(logs::Follow {
            docker: docker.clone(),
            service: service.to_owned(),
            container: container.id.clone(),
            pod: Arc::from(container.name.as_str()),
            start,
            previous,
            events: self.inner.events.clone(),
            max_line: self.inner.options.max_line,
        });
        shared.followers.insert(service.to_owned(), follower);
    }

    /// Reads every dev service's container: reports its rollout, follows its logs.
    async fn refresh(&self, docker: &Docker) -> Result<(), bollard::errors::Error> {
        let _ops = self.inner.ops.lock().await;
        let mut services: Vec<(&String, &Target)> =
            self.inner.targets.iter().filter(|(_, t)| t.dev.is_some()).collect();
        services.sort_by_key(|(name, _)| *name);
        for (service, target) in services {
            match dev::current(docker, service).await? {
                Some(container) => {
                    let stopped = self.shared().stopped.contains(&container.id);
                    self.ensure_following(docker, service, &container);
                    self.report(service, dev::status(&container, stopped)).await;
                }
                None => self.report(service, dev::not_created(&target.default_image())).await,
            }
        }
        Ok(())
    }

    /// The dev container of `service` now, if any (for tests and tools).
    pub async fn container(&self, service: &str) -> Result<Option<DevContainer>, BackendError> {
        let docker = self.client().await?;
        dev::current(&docker, service).await.map_err(backend_error)
    }
}

fn snapshot(container: Option<&DevContainer>) -> Snapshot {
    Snapshot {
        image: container.map(|c| c.image.clone()).unwrap_or_default(),
        canary_image: None,
        weight: 0,
        revision: container.and_then(|c| c.revisions.first()).map(|r| r.number),
    }
}

/// The service's dev container, which restart and stop need to exist.
async fn running(docker: &Docker, service: &str) -> Result<DevContainer, BackendError> {
    dev::current(docker, service)
        .await
        .map_err(backend_error)?
        .ok_or_else(|| BackendError::NotFound(format!("a dev container of {service}")))
}

fn change(before: Option<&DevContainer>, after: &DevContainer, summary: String) -> Change {
    Change { before: snapshot(before), after: snapshot(Some(after)), summary }
}

impl Workloads for DockerWorkloads {
    async fn facts(&self, service: &str) -> Result<Facts, BackendError> {
        let Some(target) = self.target(service).cloned() else {
            return NoWorkloads.facts(service).await;
        };
        let building = self.shared().building.contains(service);
        let container = match &target.dev {
            Some(_) => {
                let docker = self.client().await?;
                dev::current(&docker, service).await.map_err(backend_error)?
            }
            None => None,
        };
        let mut token = std::collections::hash_map::DefaultHasher::new();
        container.as_ref().map(|c| (&c.id, c.revisions.len())).hash(&mut token);
        building.hash(&mut token);
        Ok(Facts {
            stage: target.stage,
            plan: target.plan,
            primary_image: container.as_ref().map(|c| c.image.clone()).unwrap_or_default(),
            canary_image: None,
            canary_weight: 0,
            verdict: None,
            slo_status: None,
            metrics_gap: None,
            previous_image: container.as_ref().and_then(|c| c.revisions.get(1)).map(|r| r.image.clone()),
            rollout_paused: false,
            promoting: false,
            building,
            token: token.finish(),
        })
    }

    async fn apply(&self, service: &str, plan: &Plan, context: &ActionContext) -> Result<Change, BackendError> {
        if !self.handles(service) {
            return NoWorkloads.apply(service, plan, context).await;
        }
        match plan {
            Plan::Rebuild => self.rebuild(service).await,
            Plan::Restart => self.restart(service).await,
            Plan::Stop => self.stop(service).await,
            Plan::DeployPrimary { image } => self.deploy(service, image).await,
            Plan::UndoPrimary => {
                let docker = self.client().await?;
                let current = dev::current(&docker, service).await.map_err(backend_error)?;
                let previous = current.as_ref().and_then(|c| c.revisions.get(1)).map(|r| r.image.clone());
                match previous {
                    Some(image) => self.deploy(service, &image).await,
                    None => Err(BackendError::Unsupported(format!("{service} has no earlier image to go back to"))),
                }
            }
            Plan::StartCanary { .. } | Plan::SetCanaryWeight { .. } | Plan::PromoteFull | Plan::AbortCanary => {
                Err(BackendError::Unsupported(format!(
                    "{service} runs as a docker dev container: no canary (docker runs prototypes; deploy goes straight to it)"
                )))
            }
        }
    }
}

/// The source task: reports the engine's connection (`Connecting`, then
/// `Live`, or `Disconnected` with the reason, once per reason, polling
/// `/_ping` with a growing backoff until it is back), and while it is
/// live, every dev container's state and logs. Ends when the receiver is
/// gone.
pub async fn run(backend: DockerWorkloads) {
    let connection = |state: ConnectionState| SourceEvent::Connection { source: SOURCE.into(), state };
    if !backend.send(connection(ConnectionState::Connecting)).await {
        return;
    }
    let mut live = false;
    let mut down: Option<(Timestamp, String)> = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        if backend.inner.events.is_closed() {
            return;
        }
        match backend.reachable().await {
            Ok(docker) => {
                backoff = BACKOFF_MIN;
                if !live {
                    live = true;
                    down = None;
                    if !backend.send(connection(ConnectionState::Live)).await {
                        return;
                    }
                }
                // A failed read is noticed by the next ping, if it matters.
                let _ = backend.refresh(&docker).await;
                tokio::time::sleep(backend.inner.options.poll).await;
            }
            Err(reason) => {
                live = false;
                let reason = format!("docker is not reachable: {reason}");
                let since = down.as_ref().map_or_else(|| backend.inner.clock.now(), |(since, _)| *since);
                if down.as_ref().map(|(_, r)| r) != Some(&reason) {
                    let state = ConnectionState::Disconnected { since, reason: reason.clone() };
                    if !backend.send(connection(state)).await {
                        return;
                    }
                }
                down = Some((since, reason));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_found_like_the_docker_cli_finds_it() {
        assert_eq!(resolve_host(Some("/tmp/d.sock")), "unix:///tmp/d.sock");
        assert_eq!(resolve_host(Some("tcp://127.0.0.1:2375")), "tcp://127.0.0.1:2375");
    }
}
