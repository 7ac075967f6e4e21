//! The loop with quiet sources and no input does nothing: no frame, no
//! wake-up, however much (virtual) time passes. A toast costs exactly one
//! wake-up, when it expires.

mod common;

use cockpit::action::Keymap;
use cockpit::app::Loop;
use cockpit::backend::sim::{SimFleet, SimOptions};
use cockpit::clock::Clock;
use cockpit::domain::Millis;
use cockpit::event::{ExecEvent, Op, Request};
use cockpit::state::{AppState, Msg};
use cockpit::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Duration;
use tokio::sync::mpsc;

/// A cockpit on the simulated fleet that got one burst of data, as a source
/// sends at start, and then silence.
struct Quiet {
    state: AppState,
    clock: Clock,
    events: mpsc::Sender<Msg>,
    inbox: mpsc::Receiver<Msg>,
    requests: mpsc::Sender<Request>,
    _requests_inbox: mpsc::Receiver<Request>,
}

impl Quiet {
    async fn new(read_only: bool) -> Quiet {
        let mut fleet = SimFleet::new(SimOptions::default());
        let clock = Clock::starting_at(fleet.now(), 1.0);
        let (events, inbox) = mpsc::channel(4096);
        for event in fleet.advance_to(fleet.now().plus(Millis(500))) {
            events.send(Msg::Source(event)).await.expect("the inbox is open");
        }
        let (requests, _requests_inbox) = mpsc::channel(16);
        let state = AppState::new(fleet.backend_info(), Keymap::default(), read_only, 1000);
        Quiet { state, clock, events, inbox, requests, _requests_inbox }
    }

    fn app<'a>(&'a mut self, theme: &'a Theme) -> Loop<'a> {
        Loop {
            state: &mut self.state,
            theme,
            clock: self.clock,
            inbox: &mut self.inbox,
            requests: self.requests.clone(),
            stats: Default::default(),
            switch_context: None,
            on_select: None,
        }
    }
}

/// Runs the loop for `seconds` of (paused, auto-advancing) time.
async fn run_for(app: &mut Loop<'_>, terminal: &mut Terminal<TestBackend>, seconds: u64) {
    tokio::select! {
        result = app.run(terminal) => panic!("the loop ended: {result:?}"),
        _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_cockpit_draws_nothing_and_never_wakes() {
    let mut quiet = Quiet::new(false).await;
    let theme = Theme::default();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let events = quiet.events.clone();
    let mut app = quiet.app(&theme);
    run_for(&mut app, &mut terminal, 1).await;
    let settled = app.stats;
    assert!(settled.frames >= 1, "the first data was drawn: {settled:?}");

    run_for(&mut app, &mut terminal, 3600).await;
    assert_eq!(app.stats, settled, "an hour of silence drew nothing and woke nothing");

    // A toast (here: an executor answer) draws once, and wakes once more to expire.
    let request = Request {
        id: 9,
        service: "cart".into(),
        op: Op::Rollback,
        confirmed: true,
        typed_name: None,
        asked_token: None,
    };
    events.send(Msg::Exec(ExecEvent::Done { request, summary: "canary 25 → 0 %".into() })).await.unwrap();
    run_for(&mut app, &mut terminal, 3600).await;
    assert_eq!(app.stats.wakeups, settled.wakeups + 2, "one message, one expiry: {:?}", app.stats);
    assert_eq!(app.stats.frames, settled.frames + 2, "shown, then cleared: {:?}", app.stats);
    assert!(app.state.toasts.is_empty());
    drop(events);
}

#[tokio::test(start_paused = true)]
async fn the_team_screen_redraws_every_second_so_its_clock_moves() {
    let mut quiet = Quiet::new(true).await;
    quiet.state.team_screen = true;
    let theme = Theme::default();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut app = quiet.app(&theme);
    run_for(&mut app, &mut terminal, 1).await;
    let settled = app.stats;
    run_for(&mut app, &mut terminal, 60).await;
    let frames = app.stats.frames - settled.frames;
    assert!((59..=61).contains(&frames), "a minute of silence on the wall screen: {frames} frames");
    let header = common::render(app.state, 120, 40, &theme);
    assert!(header.lines().next().is_some_and(|l| l.contains(&format!("{} UTC", app.state.now.clock()))), "{header}");
}
