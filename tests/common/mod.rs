//! A deterministic harness: the real state, the real simulated fleet and
//! the real executor, driven step by step on the fleet's clock, with the
//! screen rendered into a ratatui `TestBackend`.
#![allow(dead_code)]

use cockpit::action::{Key, Keymap};
use cockpit::audit::{AuditEntry, AuditLog};
use cockpit::backend::sim::{SimBackend, SimFleet, SimOptions};
use cockpit::clock::Clock;
use cockpit::config::Scenario;
use cockpit::domain::{Millis, Timestamp};
use cockpit::event::Request;
use cockpit::executor::Executor;
use cockpit::state::{AppState, Effect, Msg, update};
use cockpit::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::PathBuf;

pub struct Harness {
    pub state: AppState,
    pub backend: SimBackend,
    pub executor: Executor<SimBackend>,
    pub audit_path: PathBuf,
    pub effects: Vec<Effect>,
    _dir: tempfile::TempDir,
}

pub fn options(scenario: Scenario) -> SimOptions {
    SimOptions { scenario, log_rate: 1.0, ..SimOptions::default() }
}

impl Harness {
    pub fn new(scenario: Scenario) -> Harness {
        Harness::with(options(scenario), false)
    }

    pub fn with(options: SimOptions, read_only: bool) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let audit_path = dir.path().join("audit.jsonl");
        let fleet = SimFleet::new(options);
        let info = fleet.backend_info();
        let clock = Clock::starting_at(fleet.now(), 1.0);
        let backend = SimBackend::new(fleet);
        let executor = Executor::new(backend.clone(), read_only, AuditLog::at(audit_path.clone()), clock)
            .with_identity("tester", &info.kind, &info.context);
        let mut state = AppState::new(info, Keymap::default(), read_only, 10_000);
        state.team = Some("shop".into());
        let mut h = Harness { state, backend, executor, audit_path, effects: Vec::new(), _dir: dir };
        h.send(Msg::Resize { width: 160, height: 45 });
        h.advance(Millis(250));
        h
    }

    pub fn now(&self) -> Timestamp {
        self.backend.world().now()
    }

    /// Folds one message in and keeps its effects for the caller.
    pub fn send(&mut self, msg: Msg) -> Vec<Effect> {
        let now = self.now();
        let effects = update(&mut self.state, now, msg);
        self.effects.extend(effects.iter().cloned());
        effects
    }

    /// Runs the fleet forward and folds in everything it reports.
    pub fn advance(&mut self, span: Millis) {
        let steps = (span.0 / 250).max(1);
        for _ in 0..steps {
            let to = self.now().plus(Millis(span.0 / steps));
            let events = self.backend.world().advance_to(to);
            for event in events {
                self.send(Msg::Source(event));
            }
        }
        self.send(Msg::Tick);
    }

    /// Presses a key and carries out whatever it asks the executor to do,
    /// feeding the executor's answers back, as the loop would.
    pub async fn press(&mut self, key: Key) {
        let effects = self.send(Msg::Key(key));
        self.execute_all(effects).await;
    }

    pub async fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.press(Key::char(c)).await;
        }
    }

    pub async fn execute_all(&mut self, effects: Vec<Effect>) {
        let mut queue: Vec<Request> = effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Execute(r) => Some(r),
                Effect::Quit | Effect::SwitchContext(_) => None,
            })
            .collect();
        while let Some(request) = queue.pop() {
            let answer = self.executor.execute(request).await;
            for effect in self.send(Msg::Exec(answer)) {
                if let Effect::Execute(r) = effect {
                    queue.push(r);
                }
            }
        }
        // Let the fleet report what the action changed.
        self.advance(Millis(250));
    }

    /// Selects a service by moving through the list.
    pub fn select(&mut self, name: &str) {
        let target = self.state.services.iter().position(|s| s.info.name == name).expect("service exists");
        self.state.user_moved = true;
        while self.state.selected != target {
            let key = if self.state.selected < target { Key::char('j') } else { Key::char('k') };
            self.send(Msg::Key(key));
        }
    }

    pub fn audit(&self) -> Vec<AuditEntry> {
        AuditLog::read(&self.audit_path).unwrap_or_default()
    }

    pub fn screen(&self, width: u16, height: u16) -> String {
        render(&self.state, width, height, &Theme::default())
    }

    pub fn service(&self, name: &str) -> &cockpit::state::ServiceView {
        self.state.service(name).expect("service exists")
    }
}

/// The screen as text, one line per row.
pub fn render(state: &AppState, width: u16, height: u16, theme: &Theme) -> String {
    let mut state = state.clone();
    state.width = width;
    state.height = height;
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(|f| cockpit::ui::draw(f, &state, theme)).expect("draw");
    buffer_text(terminal.backend().buffer())
}

pub fn buffer_text(buffer: &ratatui::buffer::Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut row = String::new();
        for x in 0..area.width {
            row.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

/// Masks what moves between runs of the same seed: nothing should, but the
/// clock in the header is the one place a reader expects to change.
pub fn masked(screen: &str) -> String {
    let mut out = String::new();
    for line in screen.lines() {
        let masked = match line.find(" UTC") {
            Some(i) if i >= 8 => format!("{}HH:MM:SS{}", &line[..i - 8], &line[i..]),
            _ => line.to_string(),
        };
        out.push_str(&masked);
        out.push('\n');
    }
    out
}

/// Runs a composed cockpit as the TUI does (sources and executor started,
/// the real loop drawing into a 160×45 test terminal) and calls `step`
/// every 50 ms with the state and a way to press keys, until `step` returns
/// something or `within` passes.
pub async fn drive<T>(
    runtime: &mut cockpit::compose::Runtime,
    within: std::time::Duration,
    mut step: impl FnMut(&mut AppState, &dyn Fn(Key)) -> Option<T>,
) -> T {
    let (requests, request_inbox) = tokio::sync::mpsc::channel(16);
    let hooks = runtime.start(request_inbox);
    let theme = Theme::default();
    let mut terminal = Terminal::new(TestBackend::new(160, 45)).expect("test terminal");
    let events = runtime.events.clone();
    let _ = events.try_send(Msg::Resize { width: 160, height: 45 });
    let press = move |key: Key| events.try_send(Msg::Key(key)).expect("the loop listens");
    let clock = runtime.clock;
    let mut app = cockpit::app::Loop {
        state: &mut runtime.state,
        theme: &theme,
        clock,
        inbox: &mut runtime.inbox,
        requests,
        stats: Default::default(),
        switch_context: hooks.switch_context,
        on_select: hooks.on_select,
    };
    let deadline = tokio::time::Instant::now() + within;
    loop {
        tokio::select! {
            result = app.run(&mut terminal) => panic!("the loop ended: {result:?}"),
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
        }
        if let Some(done) = step(app.state, &press) {
            return done;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing on screen within {within:?}:\n{}",
            render(app.state, 160, 45, &theme)
        );
    }
}
