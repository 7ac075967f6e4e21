//! The application state and the one place it changes: `update`.
//!
//! `update(state, now, msg)` is pure: no tokio, no terminal, no I/O. Keys
//! arrive already parsed (`action::Key`), source and executor reports arrive
//! as owned events, and anything that must change the world leaves as an
//! `Effect` for the executor. Tests drive it directly.

mod logs_view;
mod service;

pub use logs_view::{LogView, Search, passes};
pub use service::ServiceView;

use crate::action::{Action, Key, KeyCode, Keymap};
use crate::domain::logs::LogBuffer;
use crate::domain::slo::SloStatus;
use crate::domain::time::{Millis, SECOND};
use crate::domain::{Stage, Timestamp};
use crate::event::{
    BackendInfo, ChangeRecord, ConnectionState, ExecEvent, Op, Question, Request, ServiceInfo, SourceEvent,
};
use crate::ui::layout;
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(Key),
    /// A left click at a screen cell.
    Click {
        column: u16,
        row: u16,
    },
    /// Mouse wheel over the screen; positive is down.
    Scroll {
        column: u16,
        row: u16,
        lines: i16,
    },
    Resize {
        width: u16,
        height: u16,
    },
    /// The clock moved on (animations, toast expiry).
    Tick,
    Source(SourceEvent),
    Exec(ExecEvent),
    /// A signal asked the process to end (SIGTERM, SIGHUP, SIGINT).
    Quit,
    /// Something the loop could not do for the user (e.g. an unknown context).
    Problem(String),
}

/// A service's health. Unknown (no SLO measured) is its own state,
/// never counted or shown as ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Paging,
    Ticket,
    /// Not paging itself; a dependency it relies on is.
    Impacted,
    Ok,
    Unknown,
}

/// Services per health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HealthCounts {
    pub paging: usize,
    pub ticket: usize,
    pub impacted: usize,
    pub ok: usize,
    /// No SLO measured: no metrics source, no series, or not yet.
    pub unknown: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Execute(Request),
    /// `:ctx NAME`: re-sync everything from another kubeconfig context.
    SwitchContext(String),
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Services,
    Rollout,
    Canary,
    Slo,
    Logs,
}

impl Pane {
    const ORDER: [Pane; 5] = [Pane::Services, Pane::Rollout, Pane::Canary, Pane::Slo, Pane::Logs];

    fn cycle(self, forward: bool) -> Pane {
        let i = Pane::ORDER.iter().position(|p| *p == self).unwrap_or(0);
        let n = Pane::ORDER.len();
        Pane::ORDER[if forward { (i + 1) % n } else { (i + n - 1) % n }]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptPurpose {
    DeployImage {
        service: String,
    },
    /// The mission-critical gate: the request waits for the typed name.
    TypeName {
        request: Request,
        reason: String,
    },
    Search,
    /// A `:` command.
    Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modal {
    Help,
    Messages,
    Prompt { purpose: PromptPurpose, input: String },
    Confirm { request: Request, question: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastKind {
    Info,
    Success,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub kind: ToastKind,
    pub text: String,
    pub until: Timestamp,
}

/// A message as it was shown, kept after its toast expires (`:messages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub at: Timestamp,
    pub kind: ToastKind,
    pub text: String,
}

/// How many messages `:messages` keeps.
const MESSAGES_LEN: usize = 100;

/// Two reports of one change (audit log, cluster Event) are this close.
const SAME_CHANGE_WITHIN: Millis = Millis(30 * SECOND.0);
/// How many changes the timeline keeps.
const TIMELINE_LEN: usize = 200;
const TOAST_TIME: Millis = Millis(5 * SECOND.0);
const ERROR_TOAST_TIME: Millis = Millis(10 * SECOND.0);
/// Redraw cadence while something animates (a build's elapsed time).
const ANIMATION_FRAME: Millis = Millis(250);

#[derive(Debug, Clone)]
pub struct AppState {
    pub backend: BackendInfo,
    pub team: Option<String>,
    pub read_only: bool,
    pub connections: BTreeMap<String, ConnectionState>,
    /// Sorted by stage, then name: the order of the service list.
    pub services: Vec<ServiceView>,
    pub selected: usize,
    pub focus: Pane,
    pub log_view: LogView,
    pub modal: Option<Modal>,
    pub toasts: Vec<Toast>,
    /// Every recent message, newest first, expired or not.
    pub messages: VecDeque<Message>,
    /// Newest first.
    pub timeline: VecDeque<ChangeRecord>,
    /// Requests sent to the executor and not answered yet.
    pub pending: BTreeMap<u64, Request>,
    pub keymap: Keymap,
    pub now: Timestamp,
    pub width: u16,
    pub height: u16,
    pub log_capacity: usize,
    /// Something visible changed since the last frame.
    pub redraw: bool,
    pub quitting: bool,
    /// Until the user picks a service, the selection follows the worst one.
    pub user_moved: bool,
    /// Clock time per real second (a fast simulation): toasts and
    /// animations are timed in real seconds.
    pub time_scale: f64,
    /// The team screen is shown instead of the main screen.
    pub team_screen: bool,
    /// Services whose running build is deployed as soon as it succeeds.
    pub deploy_after_build: std::collections::BTreeSet<String>,
    /// Questions from the executor that arrived while another modal was open.
    pub questions: VecDeque<Modal>,
    /// The kubeconfig's contexts, for `:ctx`.
    pub contexts: Vec<String>,
    /// Service name to position in `services`.
    index: std::collections::HashMap<String, usize>,
    /// Per service, the paging dependency that drags it, if any.
    impacts: Vec<Option<usize>>,
    next_request: u64,
}

impl AppState {
    pub fn new(backend: BackendInfo, keymap: Keymap, read_only: bool, log_capacity: usize) -> Self {
        AppState {
            backend,
            team: None,
            read_only,
            connections: BTreeMap::new(),
            services: Vec::new(),
            selected: 0,
            focus: Pane::Services,
            log_view: LogView::default(),
            modal: None,
            toasts: Vec::new(),
            messages: VecDeque::new(),
            timeline: VecDeque::new(),
            pending: BTreeMap::new(),
            keymap,
            now: Timestamp(0),
            width: 80,
            height: 24,
            log_capacity,
            redraw: true,
            quitting: false,
            user_moved: false,
            time_scale: 1.0,
            team_screen: false,
            questions: VecDeque::new(),
            contexts: Vec::new(),
            deploy_after_build: Default::default(),
            index: std::collections::HashMap::new(),
            impacts: Vec::new(),
            next_request: 1,
        }
    }

    pub fn selected_service(&self) -> Option<&ServiceView> {
        self.services.get(self.selected)
    }

    pub fn service(&self, name: &str) -> Option<&ServiceView> {
        self.service_index(name).map(|i| &self.services[i])
    }

    fn service_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The paging service this one depends on, directly or through others:
    /// the likely root cause when this one suffers.
    pub fn impacted_by(&self, name: &str) -> Option<&str> {
        let culprit = (*self.impacts.get(self.service_index(name)?)?)?;
        Some(self.services[culprit].info.name.as_str())
    }

    /// Recomputes every service's root cause. Runs when the inventory or a
    /// paging status changes, never while drawing.
    fn recompute_impacts(&mut self) {
        let paging: Vec<bool> = self.services.iter().map(|s| s.slo_status() == Some(SloStatus::Page)).collect();
        let deps: Vec<Vec<usize>> = self
            .services
            .iter()
            .map(|s| s.info.depends_on.iter().filter_map(|d| self.index.get(d).copied()).collect())
            .collect();
        let any_paging = paging.iter().any(|p| *p);
        self.impacts = (0..self.services.len())
            .map(|start| {
                if !any_paging {
                    return None;
                }
                // Breadth first: the deepest paging dependency is the root cause.
                let mut seen = vec![false; deps.len()];
                seen[start] = true;
                let mut level: Vec<usize> = vec![start];
                let mut culprit = None;
                while !level.is_empty() {
                    let mut next = Vec::new();
                    for &i in &level {
                        for &d in &deps[i] {
                            if !seen[d] {
                                seen[d] = true;
                                if paging[d] {
                                    culprit = Some(d);
                                }
                                next.push(d);
                            }
                        }
                    }
                    level = next;
                }
                culprit
            })
            .collect();
    }

    /// How a service is doing, as every screen and `status` counts it.
    pub fn health(&self, service: &ServiceView) -> Health {
        match service.slo_status() {
            Some(SloStatus::Page) => Health::Paging,
            Some(SloStatus::Ticket) => Health::Ticket,
            _ if self.impacted_by(&service.info.name).is_some() => Health::Impacted,
            Some(SloStatus::Ok) => Health::Ok,
            None => Health::Unknown,
        }
    }

    /// Every service counted by health, for the summary lines.
    pub fn health_counts(&self) -> HealthCounts {
        let mut counts = HealthCounts::default();
        for service in &self.services {
            match self.health(service) {
                Health::Paging => counts.paging += 1,
                Health::Ticket => counts.ticket += 1,
                Health::Impacted => counts.impacted += 1,
                Health::Ok => counts.ok += 1,
                Health::Unknown => counts.unknown += 1,
            }
        }
        counts
    }

    /// The service most in need of attention: paging before ticket before
    /// ok, mission-critical before production before prototype.
    pub fn worst_service(&self) -> Option<usize> {
        // A root cause outranks the services it drags down.
        let rank = |s: &ServiceView| {
            let status = s.slo_status().unwrap_or(SloStatus::Ok);
            let failing = s.live_verdict().is_some_and(|v| v.is_failing());
            let root = self.impacted_by(&s.info.name).is_none();
            (status, root, failing, s.info.stage)
        };
        let (best, worst) =
            self.services.iter().enumerate().max_by(|a, b| rank(a.1).cmp(&rank(b.1)).then(b.0.cmp(&a.0)))?;
        let calm = worst.slo_status().unwrap_or(SloStatus::Ok) == SloStatus::Ok
            && !worst.live_verdict().is_some_and(|v| v.is_failing());
        (!calm).then_some(best)
    }

    /// Services for the team screen: by stage (mission-critical first),
    /// worst first within a stage.
    pub fn board(&self) -> Vec<(Stage, Vec<usize>)> {
        let mut groups = Vec::new();
        for stage in Stage::ALL.iter().rev() {
            let mut members: Vec<usize> =
                (0..self.services.len()).filter(|&i| self.services[i].info.stage == *stage).collect();
            members.sort_by_key(|&i| {
                let s = &self.services[i];
                let status = s.slo_status().unwrap_or(SloStatus::Ok);
                let impacted = self.impacts.get(i).is_some_and(Option::is_some);
                let failing = s.live_verdict().is_some_and(|v| v.is_failing());
                let root_cause = status == SloStatus::Page && !impacted;
                let burn = s.slo.as_ref().map_or(0, |r| (r.fast_burn() * 1000.0) as i64);
                (std::cmp::Reverse((status, root_cause, impacted, failing, burn)), s.info.name.clone())
            });
            if !members.is_empty() {
                groups.push((*stage, members));
            }
        }
        groups
    }

    /// Each paging root cause with the services it drags down.
    pub fn cascades(&self) -> Vec<(usize, Vec<usize>)> {
        let mut roots: Vec<(usize, Vec<usize>)> = Vec::new();
        for (victim, culprit) in self.impacts.iter().enumerate() {
            if let Some(culprit) = culprit {
                match roots.iter_mut().find(|(root, _)| root == culprit) {
                    Some((_, victims)) => victims.push(victim),
                    None => roots.push((*culprit, vec![victim])),
                }
            }
        }
        roots.sort_by_key(|(root, _)| self.services[*root].info.name.clone());
        roots
    }

    /// When the loop must wake up even if no event arrives.
    ///
    /// The rule: the team screen, a wall display with a clock, redraws once
    /// a second so that the room sees time pass. The main screen shows no
    /// clock and sleeps while nothing changes.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let second = self.scaled(Millis(1000)).0.max(1);
        let wall_clock = self.team_screen.then(|| Timestamp((self.now.0.div_euclid(second) + 1) * second));
        let toast = self.toasts.iter().map(|t| t.until).chain(wall_clock).min();
        let animation = self
            .selected_service()
            .and_then(|s| s.build.as_ref())
            .filter(|b| b.running())
            .map(|_| self.now.plus(self.scaled(ANIMATION_FRAME)));
        toast.into_iter().chain(animation).min()
    }

    /// The rows of the service list, headings included, as drawn.
    pub fn list_rows(&self) -> Vec<ListRow> {
        let mut rows = Vec::with_capacity(self.services.len() + 3);
        let mut stage = None;
        for (i, service) in self.services.iter().enumerate() {
            if stage != Some(service.info.stage) {
                stage = Some(service.info.stage);
                rows.push(ListRow::Heading(service.info.stage));
            }
            rows.push(ListRow::Service(i));
        }
        rows
    }

    /// A span of real time in clock time.
    fn scaled(&self, span: Millis) -> Millis {
        Millis((span.0 as f64 * self.time_scale.max(0.01)) as i64)
    }

    fn toast(&mut self, kind: ToastKind, text: impl Into<String>) {
        let until = self.now.plus(self.scaled(if kind == ToastKind::Error { ERROR_TOAST_TIME } else { TOAST_TIME }));
        let text = text.into();
        self.messages.push_front(Message { at: self.now, kind, text: text.clone() });
        self.messages.truncate(MESSAGES_LEN);
        self.toasts.push(Toast { kind, text, until });
        if self.toasts.len() > 4 {
            self.toasts.remove(0);
        }
    }

    fn request(&mut self, service: String, op: Op) -> Effect {
        let request =
            Request { id: self.next_request, service, op, confirmed: false, typed_name: None, asked_token: None };
        self.next_request += 1;
        self.pending.insert(request.id, request.clone());
        Effect::Execute(request)
    }

    fn resubmit(&mut self, request: Request) -> Effect {
        self.pending.insert(request.id, request.clone());
        Effect::Execute(request)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListRow {
    Heading(Stage),
    Service(usize),
}

/// First row shown when `selected_row` must be visible in `height` rows.
pub fn list_offset(selected_row: usize, height: usize) -> usize {
    (selected_row + 1).saturating_sub(height.max(1))
}

/// Folds one message into the state. Returns what must happen outside.
pub fn update(state: &mut AppState, now: Timestamp, msg: Msg) -> Vec<Effect> {
    state.now = now;
    let before = state.toasts.len();
    state.toasts.retain(|t| t.until > now);
    if state.toasts.len() != before {
        state.redraw = true;
    }
    match msg {
        Msg::Key(key) => on_key(state, key),
        Msg::Click { column, row } => {
            on_click(state, column, row);
            Vec::new()
        }
        Msg::Scroll { column, row, lines } => {
            on_scroll(state, column, row, lines);
            Vec::new()
        }
        Msg::Resize { width, height } => {
            state.width = width;
            state.height = height;
            state.redraw = true;
            Vec::new()
        }
        Msg::Tick => {
            // The team screen's clock moves every second, whatever else does.
            if state.team_screen || state.next_deadline().is_some_and(|d| d <= now.plus(state.scaled(ANIMATION_FRAME)))
            {
                state.redraw = true;
            }
            Vec::new()
        }
        Msg::Source(event) => on_source(state, event),
        Msg::Exec(event) => {
            on_exec(state, event);
            Vec::new()
        }
        Msg::Quit => {
            state.quitting = true;
            vec![Effect::Quit]
        }
        Msg::Problem(text) => {
            state.toast(ToastKind::Error, text);
            state.redraw = true;
            Vec::new()
        }
    }
}

fn on_source(state: &mut AppState, event: SourceEvent) -> Vec<Effect> {
    let selected = state.selected_service().map(|s| s.info.name.clone());
    let visible = |name: &str| selected.as_deref() == Some(name);
    match event {
        SourceEvent::Inventory { backend, services } => {
            set_inventory(state, backend, services);
            state.redraw = true;
        }
        SourceEvent::Rollout { service, status } => {
            with_service(state, &service, |s| s.rollout = Some(status));
        }
        SourceEvent::Traffic { service, traffic } => {
            with_service(state, &service, |s| {
                let new_canary = s.traffic.as_ref().map(|t| &t.canary_image) != Some(&traffic.canary_image);
                if new_canary {
                    // An analysis of the previous canary says nothing about this one.
                    s.analysis = None;
                    s.verdict = None;
                }
                s.traffic = Some(traffic);
            });
        }
        SourceEvent::Analysis { service, primary, canary } => {
            with_service(state, &service, |s| s.set_analysis(primary, canary));
        }
        SourceEvent::Slo { service, report } => {
            let was = state.service(&service).and_then(|s| s.slo_status());
            let paging_changed = (was == Some(SloStatus::Page)) != (report.status == SloStatus::Page);
            with_service(state, &service, |s| {
                s.slo = Some(report);
                s.metrics_error = None;
            });
            if paging_changed {
                state.recompute_impacts();
            }
            if !state.user_moved {
                if let Some(worst) = state.worst_service() {
                    select(state, worst);
                }
            }
        }
        SourceEvent::MetricsError { service, message } => {
            with_service(state, &service, |s| s.metrics_error = Some(message));
        }
        SourceEvent::Logs { service, lines } => {
            let Some(i) = state.service_index(&service) else { return Vec::new() };
            let buffer = &mut state.services[i].logs;
            for line in lines {
                buffer.push(line);
            }
            if visible(&service) {
                state.log_view.refresh(&state.services[i].logs);
                state.redraw = true;
            }
        }
        SourceEvent::Build { service, build } => {
            let mut effects = Vec::new();
            if build.finished.is_some()
                && state.service(&service).and_then(|s| s.build.as_ref()).is_none_or(|b| b.finished.is_none())
            {
                let deploy = state.deploy_after_build.remove(&service);
                match (&build.tag, &build.error) {
                    (Some(tag), _) if deploy => {
                        state.toast(ToastKind::Success, format!("{service}: built {tag}; deploying it"));
                        effects.push(state.request(service.clone(), Op::Deploy { image: tag.clone() }));
                    }
                    (Some(tag), _) => {
                        state.toast(ToastKind::Success, format!("{service}: built {tag}; press d to deploy it"))
                    }
                    (None, Some(error)) => state.toast(ToastKind::Error, format!("{service}: build failed: {error}")),
                    _ => {}
                }
            }
            with_service(state, &service, |s| {
                if let Some(tag) = &build.tag {
                    s.last_built = Some(tag.clone());
                }
                s.build = Some(build);
            });
            return effects;
        }
        SourceEvent::Connection { source, state: connection } => {
            state.connections.insert(source, connection);
            state.redraw = true;
        }
        SourceEvent::Access { service, denied } => {
            with_service(state, &service, |s| s.denied = denied);
        }
        SourceEvent::Change(change) => {
            // One change told twice (the audit log and the cluster's Event
            // of the same action) is shown once.
            let told = |c: &ChangeRecord| {
                c.service == change.service
                    && c.user == change.user
                    && c.summary == change.summary
                    && c.at.since(change.at).0.abs() <= SAME_CHANGE_WITHIN.0
            };
            if state.timeline.iter().any(told) {
                return Vec::new();
            }
            // Newest first, whatever order the sources report in (the audit
            // log's history may arrive after the fleet's).
            let at = state.timeline.iter().position(|c| c.at <= change.at).unwrap_or(state.timeline.len());
            state.timeline.insert(at, change);
            state.timeline.truncate(TIMELINE_LEN);
            state.redraw = true;
        }
    }
    Vec::new()
}

fn with_service(state: &mut AppState, name: &str, change: impl FnOnce(&mut ServiceView)) {
    if let Some(i) = state.service_index(name) {
        change(&mut state.services[i]);
        // Every service shows in the list, so any change is visible.
        state.redraw = true;
    }
}

fn set_inventory(state: &mut AppState, backend: BackendInfo, infos: Vec<ServiceInfo>) {
    let infos_empty = infos.is_empty();
    let selected = state.selected_service().map(|s| s.info.name.clone());
    let mut old: BTreeMap<String, ServiceView> = state.services.drain(..).map(|s| (s.info.name.clone(), s)).collect();
    let mut services: Vec<ServiceView> = infos
        .into_iter()
        .map(|info| match old.remove(&info.name) {
            Some(mut kept) => {
                kept.info = info;
                kept
            }
            None => ServiceView::new(info, LogBuffer::new(state.log_capacity)),
        })
        .collect();
    services.sort_by(|a, b| (a.info.stage, &a.info.name).cmp(&(b.info.stage, &b.info.name)));
    state.services = services;
    state.index = state.services.iter().enumerate().map(|(i, s)| (s.info.name.clone(), i)).collect();
    state.recompute_impacts();
    if state.backend.kind == backend.kind && state.backend.context != backend.context && infos_empty {
        // Another cluster (`:ctx`): its history is not this one's.
        state.timeline.clear();
    }
    state.backend = backend;
    match selected.as_deref().and_then(|n| state.service_index(n)) {
        Some(index) => state.selected = index,
        None => {
            // The selected service is gone (or none was): start afresh.
            state.selected = 0;
            if let Some(first) = state.services.first() {
                state.log_view.switch_service(&first.logs);
            }
        }
    }
}

fn select(state: &mut AppState, index: usize) {
    if state.services.is_empty() {
        state.selected = 0;
        return;
    }
    let index = index.min(state.services.len() - 1);
    let changed = index != state.selected;
    state.selected = index;
    if changed {
        state.log_view.switch_service(&state.services[index].logs);
    }
    state.redraw = true;
}

fn on_exec(state: &mut AppState, event: ExecEvent) {
    state.redraw = true;
    match event {
        ExecEvent::Ask { request, question } => {
            state.pending.remove(&request.id);
            let modal = match question {
                Question::YesNo(question) => Modal::Confirm { request, question },
                Question::TypeName { reason } => {
                    Modal::Prompt { purpose: PromptPurpose::TypeName { request, reason }, input: String::new() }
                }
            };
            // Never replace what the user is typing into: a keystroke meant
            // for a prompt must not answer a question that just arrived.
            if state.modal.is_none() {
                state.modal = Some(modal);
            } else {
                state.questions.push_back(modal);
            }
        }
        ExecEvent::Done { request, summary } => {
            state.pending.remove(&request.id);
            state.toast(ToastKind::Success, format!("{}: {summary}", request.service));
        }
        ExecEvent::Refused { request, reason } => {
            state.pending.remove(&request.id);
            if request.op == Op::Rebuild {
                state.deploy_after_build.remove(&request.service);
            }
            state.toast(ToastKind::Error, format!("{} {} refused: {reason}", request.service, request.op.name()));
        }
        ExecEvent::Failed { request, error } => {
            state.pending.remove(&request.id);
            if request.op == Op::Rebuild {
                state.deploy_after_build.remove(&request.service);
            }
            state.toast(ToastKind::Error, format!("{} {} failed: {error}", request.service, request.op.name()));
        }
    }
}

fn on_key(state: &mut AppState, key: Key) -> Vec<Effect> {
    // Ctrl-C always quits, whatever is open.
    if key == Key::ctrl('c') {
        state.quitting = true;
        return vec![Effect::Quit];
    }
    if state.modal.is_some() {
        let effects = on_modal_key(state, key);
        if state.modal.is_none() {
            state.modal = state.questions.pop_front();
        }
        return effects;
    }
    let Some(action) = state.keymap.action(key) else {
        return Vec::new();
    };
    on_action(state, action)
}

/// What an action does on the main screen.
pub fn on_action(state: &mut AppState, action: Action) -> Vec<Effect> {
    state.redraw = true;
    if state.team_screen {
        // The board offers no actions: moving, searching or changing
        // anything happens on the main screen.
        match action {
            Action::TeamScreen => state.team_screen = false,
            Action::Quit => {
                state.quitting = true;
                return vec![Effect::Quit];
            }
            Action::Help => state.modal = Some(Modal::Help),
            Action::Dismiss => state.toasts.clear(),
            _ if action.mutates() => {
                state.toast(ToastKind::Info, "team screen: no actions here; T returns to the main screen");
            }
            _ => {}
        }
        return Vec::new();
    }
    // Once the user does anything, the selection stops following the worst
    // service: it must not change under someone reading or searching.
    if !matches!(action, Action::Help | Action::Quit) {
        state.user_moved = true;
    }
    let logs_focused = state.focus == Pane::Logs;
    let page = i64::from(layout::log_rows(state.width, state.height).max(2) - 1);
    match action {
        Action::Quit => {
            state.quitting = true;
            return vec![Effect::Quit];
        }
        Action::Up if logs_focused => scroll_logs(state, -1),
        Action::Down if logs_focused => scroll_logs(state, 1),
        Action::Up => {
            state.user_moved = true;
            select(state, state.selected.saturating_sub(1));
        }
        Action::Down => {
            state.user_moved = true;
            select(state, state.selected + 1);
        }
        Action::PageUp => scroll_logs(state, -page),
        Action::PageDown => scroll_logs(state, page),
        Action::Top if logs_focused => {
            if let Some(s) = state.services.get(state.selected) {
                state.log_view.top(&s.logs);
            }
        }
        Action::Bottom if logs_focused => state.log_view.anchor = None,
        Action::Top => {
            state.user_moved = true;
            select(state, 0);
        }
        Action::Bottom => {
            state.user_moved = true;
            select(state, state.services.len().saturating_sub(1));
        }
        Action::NextPane => state.focus = state.focus.cycle(true),
        Action::PrevPane => state.focus = state.focus.cycle(false),
        Action::Help => state.modal = Some(Modal::Help),
        Action::Search => state.modal = Some(Modal::Prompt { purpose: PromptPurpose::Search, input: String::new() }),
        Action::NextMatch | Action::PrevMatch => {
            if let Some(s) = state.services.get(state.selected) {
                if !state.log_view.jump(&s.logs, action == Action::NextMatch) {
                    let text = match &state.log_view.search {
                        Some(search) => format!("no match for /{}", search.query),
                        None => "no search: press / first".into(),
                    };
                    state.toast(ToastKind::Info, text);
                }
            }
        }
        Action::Follow => {
            if let Some(s) = state.services.get(state.selected) {
                state.log_view.toggle_follow(&s.logs);
            }
        }
        Action::Wrap => state.log_view.wrap = !state.log_view.wrap,
        Action::TeamScreen => state.team_screen = true,
        Action::Command => state.modal = Some(Modal::Prompt { purpose: PromptPurpose::Command, input: String::new() }),
        Action::LevelFilter => {
            if let Some(s) = state.services.get(state.selected) {
                state.log_view.cycle_level(&s.logs);
            }
        }
        Action::Dismiss => {
            if state.log_view.search.take().is_none() {
                state.toasts.clear();
            }
        }
        Action::Rebuild
        | Action::RebuildDeploy
        | Action::Deploy
        | Action::Promote
        | Action::PromoteFull
        | Action::Rollback
        | Action::Restart
        | Action::Stop => {
            return mutating(state, action);
        }
    }
    Vec::new()
}

fn scroll_logs(state: &mut AppState, rows: i64) {
    if let Some(s) = state.services.get(state.selected) {
        state.log_view.scroll(&s.logs, rows);
    }
}

fn mutating(state: &mut AppState, action: Action) -> Vec<Effect> {
    let Some(service) = state.selected_service() else {
        return Vec::new();
    };
    let name = service.info.name.clone();
    if state.read_only {
        state.toast(ToastKind::Info, format!("read-only: {} is disabled", action.short()));
        return Vec::new();
    }
    if let Some(reason) = service.denied_reason(action) {
        let text = format!("{} is disabled for {name}: {reason}", action.short());
        state.toast(ToastKind::Error, text);
        return Vec::new();
    }
    let op = match action {
        Action::Rebuild => Op::Rebuild,
        Action::RebuildDeploy => {
            state.deploy_after_build.insert(name.clone());
            Op::Rebuild
        }
        Action::Promote => Op::Promote { full: false },
        Action::PromoteFull => Op::Promote { full: true },
        Action::Rollback => Op::Rollback,
        Action::Restart => Op::Restart,
        Action::Stop => Op::Stop,
        _ => {
            let image = service.deploy_suggestion();
            state.modal = Some(Modal::Prompt { purpose: PromptPurpose::DeployImage { service: name }, input: image });
            return Vec::new();
        }
    };
    vec![state.request(name, op)]
}

fn on_modal_key(state: &mut AppState, key: Key) -> Vec<Effect> {
    state.redraw = true;
    let Some(modal) = state.modal.take() else {
        return Vec::new();
    };
    match modal {
        Modal::Help | Modal::Messages => {
            // Any key closes help; it never triggers the key's action.
            Vec::new()
        }
        Modal::Confirm { request, question } => match key.code {
            KeyCode::Char('y' | 'Y') => {
                let request = Request { confirmed: true, ..request };
                vec![state.resubmit(request)]
            }
            KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                state.toast(ToastKind::Info, format!("{} {} cancelled", request.service, request.op.name()));
                Vec::new()
            }
            _ => {
                state.modal = Some(Modal::Confirm { request, question });
                Vec::new()
            }
        },
        Modal::Prompt { purpose, mut input } => match key.code {
            KeyCode::Esc => {
                if let PromptPurpose::TypeName { request, .. } = &purpose {
                    state.toast(ToastKind::Info, format!("{} {} cancelled", request.service, request.op.name()));
                }
                Vec::new()
            }
            KeyCode::Enter => submit_prompt(state, purpose, input),
            KeyCode::Backspace => {
                input.pop();
                state.modal = Some(Modal::Prompt { purpose, input });
                Vec::new()
            }
            KeyCode::Char('u') if key.ctrl => {
                input.clear();
                state.modal = Some(Modal::Prompt { purpose, input });
                Vec::new()
            }
            KeyCode::Char(c) if !key.ctrl && !key.alt && input.chars().count() < 512 => {
                input.push(c);
                state.modal = Some(Modal::Prompt { purpose, input });
                Vec::new()
            }
            _ => {
                state.modal = Some(Modal::Prompt { purpose, input });
                Vec::new()
            }
        },
    }
}

fn submit_prompt(state: &mut AppState, purpose: PromptPurpose, input: String) -> Vec<Effect> {
    match purpose {
        PromptPurpose::Search => {
            if let Some(s) = state.services.get(state.selected) {
                state.log_view.set_search(input.trim(), &s.logs);
                if state.log_view.search.as_ref().is_some_and(|s| s.matches.is_empty()) {
                    state.toast(ToastKind::Info, format!("no match for /{}", input.trim()));
                }
            }
            Vec::new()
        }
        PromptPurpose::DeployImage { service } => {
            let image = input.trim().to_owned();
            if image.is_empty() {
                state.toast(ToastKind::Info, "deploy cancelled: no image given");
                return Vec::new();
            }
            vec![state.request(service, Op::Deploy { image })]
        }
        PromptPurpose::TypeName { request, .. } => {
            let request = Request { typed_name: Some(input.trim().to_owned()), ..request };
            vec![state.resubmit(request)]
        }
        PromptPurpose::Command => command(state, &input),
    }
}

/// `:ctx` lists the kubeconfig's contexts, `:ctx NAME` switches to one,
/// `:messages` shows the recent messages in full.
fn command(state: &mut AppState, input: &str) -> Vec<Effect> {
    let mut words = input.split_whitespace();
    match (words.next(), words.next()) {
        (Some("messages" | "msgs"), _) => {
            state.modal = Some(Modal::Messages);
            Vec::new()
        }
        (Some("ctx" | "context"), _) if state.backend.kind != "kubernetes" => {
            state.toast(ToastKind::Error, "contexts belong to the Kubernetes backend; this cockpit is not on one");
            Vec::new()
        }
        (Some("ctx" | "context"), None) => {
            let text = match state.contexts.is_empty() {
                true => "no kubeconfig contexts known".to_owned(),
                false => format!("contexts: {}; :ctx NAME switches", state.contexts.join(", ")),
            };
            state.toast(ToastKind::Info, text);
            Vec::new()
        }
        (Some("ctx" | "context"), Some(name)) => {
            state.toast(ToastKind::Info, format!("switching to context {name}…"));
            vec![Effect::SwitchContext(name.to_owned())]
        }
        (None, _) => Vec::new(),
        (Some(other), _) => {
            state.toast(ToastKind::Error, format!("unknown command `:{other}`: try :ctx NAME or :messages"));
            Vec::new()
        }
    }
}

fn on_click(state: &mut AppState, column: u16, row: u16) {
    if state.modal.is_some() || state.team_screen {
        return;
    }
    let areas = layout::main(ratatui::layout::Rect::new(0, 0, state.width, state.height));
    let Some(areas) = areas else { return };
    let list = areas.services_inner();
    if list.contains(ratatui::layout::Position::new(column, row)) {
        state.focus = Pane::Services;
        let rows = state.list_rows();
        let selected_row = rows.iter().position(|r| *r == ListRow::Service(state.selected)).unwrap_or(0);
        let offset = list_offset(selected_row, list.height as usize);
        if let Some(ListRow::Service(i)) = rows.get(offset + (row - list.y) as usize) {
            state.user_moved = true;
            select(state, *i);
        }
        state.redraw = true;
        return;
    }
    for (pane, rect) in areas.panes() {
        if rect.contains(ratatui::layout::Position::new(column, row)) {
            state.focus = pane;
            state.redraw = true;
        }
    }
}

fn on_scroll(state: &mut AppState, column: u16, row: u16, lines: i16) {
    if state.team_screen {
        return;
    }
    let Some(areas) = layout::main(ratatui::layout::Rect::new(0, 0, state.width, state.height)) else {
        return;
    };
    let at = ratatui::layout::Position::new(column, row);
    if areas.logs.contains(at) {
        scroll_logs(state, i64::from(lines));
        state.redraw = true;
    } else if areas.services.contains(at) {
        let target = state.selected as i64 + i64::from(lines.signum());
        state.user_moved = true;
        select(state, target.max(0) as usize);
    }
}
