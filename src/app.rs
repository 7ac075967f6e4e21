//! The loop: wait for a message, fold it in with `update`, hand effects to
//! the executor, draw when something visible changed.
//!
//! It sleeps on its inbox and, only when the state asks for it (a toast to
//! expire, a build timer to animate), on one deadline. With quiet sources
//! and no input it does not wake at all: an idle cockpit uses no CPU.
//! Bursts are coalesced: everything already queued is folded in before the
//! next frame, and frames are at most ~60 per second.

use crate::clock::Clock;
use crate::event::{ExecEvent, Request};
use crate::state::{AppState, Effect, Msg, update};
use crate::theme::Theme;
use crate::ui;
use ratatui::Terminal;
use ratatui::backend::Backend;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

/// Fastest frame rate under load.
const MIN_FRAME: Duration = Duration::from_millis(16);
/// Messages folded in before a frame is considered.
const BATCH: usize = 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Frames drawn.
    pub frames: u64,
    /// Times the loop woke up (a message or a deadline).
    pub wakeups: u64,
}

pub struct Loop<'a> {
    pub state: &'a mut AppState,
    pub theme: &'a Theme,
    pub clock: Clock,
    pub inbox: &'a mut mpsc::Receiver<Msg>,
    pub requests: mpsc::Sender<Request>,
    pub stats: LoopStats,
    /// Switches the Kubernetes context (`:ctx NAME`); `None` without a cluster.
    pub switch_context: Option<ContextSwitch>,
    /// Told the selected service whenever it changes (a backend that
    /// follows logs of the service on screen only).
    pub on_select: Option<SelectHook>,
}

/// Called with the newly selected service.
pub type SelectHook = Box<dyn Fn(&str) + Send + Sync>;

/// Switches to a named context, or says why it cannot.
pub type ContextSwitch = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

impl Loop<'_> {
    /// Runs until the user quits or every sender is gone.
    pub async fn run<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> color_eyre::Result<()>
    where
        B::Error: Send + Sync + 'static,
    {
        let mut last_frame: Option<Instant> = None;
        let mut selected: Option<String> = None;
        loop {
            if let Some(hook) = &self.on_select {
                let now = self.state.selected_service().map(|s| &s.info.name);
                if now.is_some() && now != selected.as_ref() {
                    selected = now.cloned();
                    hook(selected.as_deref().unwrap_or_default());
                }
            }
            let mut frame_due = None;
            if self.state.redraw {
                let now = Instant::now();
                match last_frame {
                    Some(at) if now < at + MIN_FRAME => frame_due = Some(at + MIN_FRAME),
                    _ => {
                        terminal.draw(|frame| ui::draw(frame, self.state, self.theme))?;
                        self.state.redraw = false;
                        self.stats.frames += 1;
                        last_frame = Some(now);
                    }
                }
            }
            let deadline =
                [self.state.next_deadline().map(|t| self.clock.instant_at(t)), frame_due].into_iter().flatten().min();
            let first = tokio::select! {
                msg = self.inbox.recv() => match msg {
                    Some(msg) => msg,
                    None => return Ok(()),
                },
                _ = sleep_until(deadline), if deadline.is_some() => Msg::Tick,
            };
            self.stats.wakeups += 1;
            let mut next = Some(first);
            let mut folded = 0;
            while let Some(msg) = next {
                let mut effects = update(self.state, self.clock.now(), msg);
                while let Some(effect) = effects.pop() {
                    match effect {
                        Effect::Quit => return Ok(()),
                        Effect::SwitchContext(name) => {
                            let result = match &self.switch_context {
                                Some(switch) => switch(&name),
                                None => Err("no Kubernetes backend to switch".into()),
                            };
                            if let Err(problem) = result {
                                effects.extend(update(self.state, self.clock.now(), Msg::Problem(problem)));
                            }
                        }
                        Effect::Execute(request) => {
                            // Never wait on the executor: a slow backend must
                            // not freeze the screen. A full queue is an answer.
                            if let Err(TrySendError::Full(request) | TrySendError::Closed(request)) =
                                self.requests.try_send(request)
                            {
                                let error = "too many actions queued; wait for the running ones".to_string();
                                let busy = Msg::Exec(ExecEvent::Failed { request, error });
                                effects.extend(update(self.state, self.clock.now(), busy));
                            }
                        }
                    }
                }
                folded += 1;
                next = if folded < BATCH { self.inbox.try_recv().ok() } else { None };
            }
        }
    }
}

/// How an interactive session ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The user quit.
    Quit,
    /// A signal ended it: exits 128 + the signal, as shells expect.
    Signal(i32),
    /// The terminal went away (a closed pty): a quiet exit, as on SIGHUP.
    TerminalLost,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Quit => 0,
            Exit::Signal(signal) => 128 + signal,
            Exit::TerminalLost => 128 + 1,
        }
    }
}

/// Runs a composed cockpit in this terminal until the user quits, a signal
/// arrives or the terminal is lost. The terminal is restored on every path.
pub async fn run_in_terminal(mut runtime: crate::compose::Runtime, theme: &Theme) -> color_eyre::Result<Exit> {
    let (requests, request_inbox) = mpsc::channel(64);
    let hooks = runtime.start(request_inbox);
    let ending = crate::tui::Ending::default();
    tokio::spawn(crate::tui::signals(runtime.events.clone(), ending.clone()));
    let mut guard = crate::tui::TerminalGuard::enter()?;
    let size = guard.terminal().size()?;
    let _ = runtime.events.send(Msg::Resize { width: size.width, height: size.height }).await;
    tokio::spawn(crate::tui::input(runtime.events.clone(), ending.clone()));
    let clock = runtime.clock;
    let mut app = Loop {
        state: &mut runtime.state,
        theme,
        clock,
        inbox: &mut runtime.inbox,
        requests,
        stats: LoopStats::default(),
        switch_context: hooks.switch_context,
        on_select: hooks.on_select,
    };
    let result = app.run(guard.terminal()).await;
    drop(guard);
    match (result, ending.get()) {
        (_, Some(exit)) => Ok(exit),
        (Ok(()), None) => Ok(Exit::Quit),
        // Drawing into a terminal that is gone is how a lost pty shows.
        (Err(report), None) if crate::tui::terminal_gone(&report) => Ok(Exit::TerminalLost),
        (Err(report), None) => Err(report),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
