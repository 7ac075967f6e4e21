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
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
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
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
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

/// Terminal input as messages, until the receiver is gone.
pub async fn input(events: mpsc::Sender<Msg>) {
    let mut stream = EventStream::new();
    while let Some(Ok(event)) = stream.next().await {
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
/// restores the terminal. (In raw mode Ctrl-C arrives as a key instead.)
pub async fn signals(events: mpsc::Sender<Msg>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup), Ok(mut int)) =
            (signal(SignalKind::terminate()), signal(SignalKind::hangup()), signal(SignalKind::interrupt()))
        else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
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
