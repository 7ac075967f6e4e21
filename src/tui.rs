//! The terminal: entering and leaving raw mode and the alternate screen,
//! restoring it on every exit path (return, error, panic, signal), and the
//! task that turns terminal input into messages.

use crate::action::{Key, KeyCode};
use crate::state::Msg;
use crossterm::event::{Event, EventStream, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind};
use crossterm::{cursor, event, execute, terminal};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{Stdout, stdout};
use tokio::sync::mpsc;

/// Owns the terminal's raw state; dropping it restores the terminal.
pub struct TerminalGuard {
    /// Always `Some` until the guard is dropped.
    terminal: Option<Terminal<CrosstermBackend<Stdout>>>,
}

impl TerminalGuard {
    pub fn enter() -> std::io::Result<TerminalGuard> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        let entered = execute!(stdout(), terminal::EnterAlternateScreen, event::EnableMouseCapture, cursor::Hide);
        if let Err(error) = entered {
            restore();
            return Err(error);
        }
        let terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
        Ok(TerminalGuard { terminal: Some(terminal) })
    }

    pub fn terminal(&mut self) -> &mut Terminal<CrosstermBackend<Stdout>> {
        self.terminal.get_or_insert_with(|| unreachable!("the terminal lives as long as its guard"))
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        if let Some(mut terminal) = self.terminal.take() {
            // A terminal that is gone cannot show its cursor again, and
            // ratatui would say so on stderr as it drops: leave it be.
            if terminal.show_cursor().is_err() {
                std::mem::forget(terminal);
            }
        }
        restore();
    }
}

/// Puts the terminal back. Never panics: errors are ignored because there
/// is nothing better to do with them on the way out.
pub fn restore() {
    let _ = execute!(stdout(), event::DisableMouseCapture, terminal::LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
}

/// Restores the terminal before the previous hook prints the panic, so the
/// report is readable and the shell is usable.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// Why the session is ending, when it is not the user's `q`: the first
/// signal, or the terminal gone. Shared by the tasks that notice.
#[derive(Debug, Clone, Default)]
pub struct Ending(std::sync::Arc<std::sync::Mutex<Option<crate::app::Exit>>>);

impl Ending {
    fn set(&self, exit: crate::app::Exit) {
        let mut ending = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        ending.get_or_insert(exit);
    }

    pub fn get(&self) -> Option<crate::app::Exit> {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether an error of the loop is the terminal going away (EIO, EPIPE,
/// ENXIO on a closed pty) rather than a fault to report.
pub fn terminal_gone(report: &color_eyre::Report) -> bool {
    report.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::UnexpectedEof)
                || matches!(e.raw_os_error(), Some(5 | 6 | 32))
        })
    })
}

/// Terminal input as messages, until the receiver is gone. When input ends
/// or fails, the terminal is gone: the session ends quietly.
pub async fn input(events: mpsc::Sender<Msg>, ending: Ending) {
    let mut stream = EventStream::new();
    loop {
        let event = match stream.next().await {
            Some(Ok(event)) => event,
            Some(Err(_)) | None => {
                ending.set(crate::app::Exit::TerminalLost);
                let _ = events.send(Msg::Quit).await;
                return;
            }
        };
        let msg = match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => match key_from(key.code, key.modifiers) {
                Some(key) => Msg::Key(key),
                None => continue,
            },
            Event::Mouse(mouse) => match mouse.kind {
                MouseEventKind::Down(MouseButton::Left) => Msg::Click { column: mouse.column, row: mouse.row },
                MouseEventKind::ScrollDown => Msg::Scroll { column: mouse.column, row: mouse.row, lines: 3 },
                MouseEventKind::ScrollUp => Msg::Scroll { column: mouse.column, row: mouse.row, lines: -3 },
                _ => continue,
            },
            Event::Resize(width, height) => Msg::Resize { width, height },
            _ => continue,
        };
        if events.send(msg).await.is_err() {
            return;
        }
    }
}

/// SIGTERM, SIGHUP and SIGINT end the loop the normal way, so the guard
/// restores the terminal, and the process exits 143, 129 or 130 as shells
/// expect. (In raw mode Ctrl-C arrives as a key instead.)
pub async fn signals(events: mpsc::Sender<Msg>, ending: Ending) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup), Ok(mut int)) =
            (signal(SignalKind::terminate()), signal(SignalKind::hangup()), signal(SignalKind::interrupt()))
        else {
            return;
        };
        let number = tokio::select! {
            _ = term.recv() => 15,
            _ = hup.recv() => 1,
            _ = int.recv() => 2,
        };
        ending.set(crate::app::Exit::Signal(number));
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        ending.set(crate::app::Exit::Signal(2));
    }
    let _ = events.send(Msg::Quit).await;
}

pub fn key_from(code: event::KeyCode, modifiers: KeyModifiers) -> Option<Key> {
    use event::KeyCode as C;
    let code = match code {
        C::Char(c) => KeyCode::Char(c),
        C::Enter => KeyCode::Enter,
        C::Esc => KeyCode::Esc,
        C::Backspace => KeyCode::Backspace,
        C::Tab => KeyCode::Tab,
        C::BackTab => KeyCode::BackTab,
        C::Up => KeyCode::Up,
        C::Down => KeyCode::Down,
        C::Left => KeyCode::Left,
        C::Right => KeyCode::Right,
        C::PageUp => KeyCode::PageUp,
        C::PageDown => KeyCode::PageDown,
        C::Home => KeyCode::Home,
        C::End => KeyCode::End,
        C::Delete => KeyCode::Delete,
        C::F(n) => KeyCode::F(n),
        _ => return None,
    };
    Some(Key { code, ctrl: modifiers.contains(KeyModifiers::CONTROL), alt: modifiers.contains(KeyModifiers::ALT) })
}
