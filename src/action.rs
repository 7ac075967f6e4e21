//! What a key means. Keys are parsed from their config spelling
//! (`ctrl-c`, `shift-tab`, `P`), and the keymap turns them into `Action`s,
//! so `update` never sees a terminal event type.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCode {
    Char(char),
    Enter,
    Esc,
    Backspace,
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Delete,
    F(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    pub const fn plain(code: KeyCode) -> Key {
        Key { code, ctrl: false, alt: false }
    }

    pub const fn char(c: char) -> Key {
        Key::plain(KeyCode::Char(c))
    }

    pub const fn ctrl(c: char) -> Key {
        Key { code: KeyCode::Char(c), ctrl: true, alt: false }
    }

    /// Parses `q`, `P`, `ctrl-c`, `alt-x`, `shift-tab`, `enter`, `f1`, `space`.
    pub fn parse(text: &str) -> Result<Key, String> {
        let mut key = Key::plain(KeyCode::Esc);
        let mut rest = text;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                key.ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                key.alt = true;
                rest = r;
            } else {
                break;
            }
        }
        key.code = match rest {
            "shift-tab" | "backtab" => KeyCode::BackTab,
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "backspace" => KeyCode::Backspace,
            "tab" => KeyCode::Tab,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "delete" => KeyCode::Delete,
            "space" => KeyCode::Char(' '),
            f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next().unwrap_or(' ')),
            _ => return Err(format!("`{text}` is not a key (try `p`, `ctrl-p`, `shift-tab`, `f2`, `enter`)")),
        };
        Ok(key)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::F(n) => write!(f, "f{n}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Quit,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextPane,
    PrevPane,
    Rebuild,
    RebuildDeploy,
    Deploy,
    Promote,
    PromoteFull,
    Rollback,
    Restart,
    Stop,
    Help,
    Search,
    NextMatch,
    PrevMatch,
    Follow,
    Wrap,
    LevelFilter,
    Dismiss,
    TeamScreen,
    /// `:` commands, e.g. `:ctx NAME`.
    Command,
}

impl Action {
    pub const ALL: [Action; 27] = [
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::NextPane,
        Action::PrevPane,
        Action::Rebuild,
        Action::RebuildDeploy,
        Action::Deploy,
        Action::Promote,
        Action::PromoteFull,
        Action::Rollback,
        Action::Restart,
        Action::Stop,
        Action::Search,
        Action::NextMatch,
        Action::PrevMatch,
        Action::Follow,
        Action::Wrap,
        Action::LevelFilter,
        Action::Dismiss,
        Action::TeamScreen,
        Action::Command,
        Action::Help,
        Action::Quit,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Up => "previous service; logs: up",
            Action::Down => "next service; logs: down",
            Action::PageUp => "logs a page up",
            Action::PageDown => "logs a page down",
            Action::Top => "first service; logs: oldest",
            Action::Bottom => "last service; logs: newest",
            Action::NextPane => "next pane",
            Action::PrevPane => "previous pane",
            Action::Rebuild => "rebuild the image",
            Action::RebuildDeploy => "rebuild, then deploy it",
            Action::Deploy => "deploy an image",
            Action::Promote => "promote one step",
            Action::PromoteFull => "promote fully (y/n)",
            Action::Rollback => "roll back",
            Action::Restart => "restart dev container",
            Action::Stop => "stop dev container",
            Action::Help => "this help",
            Action::Search => "search the logs",
            Action::NextMatch => "older match",
            Action::PrevMatch => "newer match",
            Action::Follow => "follow / pause logs",
            Action::Wrap => "wrap long lines",
            Action::LevelFilter => "log level filter",
            Action::Dismiss => "close, clear search",
            Action::TeamScreen => "team screen",
            Action::Command => "command: :ctx NAME, :messages",
        }
    }

    /// The `Op::name`s an action asks the executor for.
    pub fn ops(self) -> &'static [&'static str] {
        match self {
            Action::Rebuild => &["rebuild"],
            Action::RebuildDeploy => &["rebuild", "deploy"],
            Action::Deploy => &["deploy"],
            Action::Promote => &["promote"],
            Action::PromoteFull => &["promote-full"],
            Action::Rollback => &["rollback"],
            Action::Restart => &["restart"],
            Action::Stop => &["stop"],
            _ => &[],
        }
    }

    /// Changes the world, so read-only mode disables it.
    pub fn mutates(self) -> bool {
        !self.ops().is_empty()
    }

    /// The word shown in the key bar.
    pub fn short(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Up | Action::Down => "move",
            Action::NextPane | Action::PrevPane => "pane",
            Action::Rebuild => "rebuild",
            Action::RebuildDeploy => "rebuild+deploy",
            Action::Deploy => "deploy",
            Action::Promote => "promote",
            Action::PromoteFull => "full",
            Action::Rollback => "roll back",
            Action::Restart => "restart",
            Action::Stop => "stop",
            Action::Help => "help",
            Action::Search => "search",
            Action::NextMatch | Action::PrevMatch => "match",
            Action::Follow => "follow",
            Action::Wrap => "wrap",
            Action::LevelFilter => "level",
            Action::Dismiss => "close",
            Action::TeamScreen => "team",
            Action::Command => "command",
            Action::PageUp | Action::PageDown | Action::Top | Action::Bottom => "scroll",
        }
    }
}

/// Keys to actions. Defaults follow vim and k9s habits; config overrides
/// single keys without losing the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: BTreeMap<Key, Action>,
}

impl Default for Keymap {
    fn default() -> Self {
        use KeyCode::*;
        let mut bindings = BTreeMap::new();
        let mut bind = |key: Key, action| {
            bindings.insert(key, action);
        };
        bind(Key::char('q'), Action::Quit);
        bind(Key::ctrl('c'), Action::Quit);
        bind(Key::char('k'), Action::Up);
        bind(Key::plain(Up), Action::Up);
        bind(Key::char('j'), Action::Down);
        bind(Key::plain(Down), Action::Down);
        bind(Key::plain(PageUp), Action::PageUp);
        bind(Key::ctrl('u'), Action::PageUp);
        bind(Key::plain(PageDown), Action::PageDown);
        bind(Key::ctrl('d'), Action::PageDown);
        bind(Key::char('g'), Action::Top);
        bind(Key::plain(Home), Action::Top);
        bind(Key::char('G'), Action::Bottom);
        bind(Key::plain(End), Action::Bottom);
        bind(Key::plain(Tab), Action::NextPane);
        bind(Key::plain(BackTab), Action::PrevPane);
        bind(Key::char('r'), Action::Rebuild);
        bind(Key::ctrl('r'), Action::RebuildDeploy);
        bind(Key::char('d'), Action::Deploy);
        bind(Key::char('p'), Action::Promote);
        bind(Key::char('P'), Action::PromoteFull);
        bind(Key::char('b'), Action::Rollback);
        bind(Key::char('?'), Action::Help);
        bind(Key::char('/'), Action::Search);
        bind(Key::char('n'), Action::NextMatch);
        bind(Key::char('N'), Action::PrevMatch);
        bind(Key::char('f'), Action::Follow);
        bind(Key::char('w'), Action::Wrap);
        bind(Key::char('l'), Action::LevelFilter);
        bind(Key::plain(Esc), Action::Dismiss);
        bind(Key::char('T'), Action::TeamScreen);
        bind(Key::char(':'), Action::Command);
        bind(Key::char('R'), Action::Restart);
        bind(Key::char('S'), Action::Stop);
        Keymap { bindings }
    }
}

impl Keymap {
    /// The defaults with `overrides` (key spelling → action name) applied.
    /// A key bound to `"none"` is unbound.
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> Result<Keymap, String> {
        let mut keymap = Keymap::default();
        for (key_text, action_text) in overrides {
            let key = Key::parse(key_text).map_err(|e| format!("[keys] {e}"))?;
            if action_text == "none" {
                keymap.bindings.remove(&key);
                continue;
            }
            let action: Action =
                serde_json::from_value(serde_json::Value::String(action_text.clone())).map_err(|_| {
                    let names: Vec<String> = Action::ALL
                        .iter()
                        .filter_map(|a| serde_json::to_value(a).ok())
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    format!("[keys] `{key_text}`: unknown action `{action_text}` (one of: {}, none)", names.join(", "))
                })?;
            keymap.bindings.insert(key, action);
        }
        Ok(keymap)
    }

    pub fn action(&self, key: Key) -> Option<Action> {
        // Terminals report shifted letters as upper-case chars, sometimes
        // with a shift flag we do not model; the char is what counts.
        self.bindings.get(&key).copied()
    }

    /// Every key bound to `action`, in a stable order.
    pub fn keys_for(&self, action: Action) -> Vec<Key> {
        self.bindings.iter().filter(|(_, a)| **a == action).map(|(k, _)| *k).collect()
    }

    /// The first key for `action`, as shown in the key bar.
    pub fn label(&self, action: Action) -> Option<String> {
        let keys = self.keys_for(action);
        // Prefer a plain character, then a named key (`pgup`), over ctrl chords.
        let plain = |k: &&Key| !k.ctrl && !k.alt;
        keys.iter()
            .find(|k| matches!(k.code, KeyCode::Char(_)) && plain(k))
            .or(keys.iter().find(plain))
            .or(keys.first())
            .map(|k| k.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_their_config_spelling() {
        assert_eq!(Key::parse("ctrl-c"), Ok(Key::ctrl('c')));
        assert_eq!(Key::parse("P"), Ok(Key::char('P')));
        assert_eq!(Key::parse("shift-tab"), Ok(Key::plain(KeyCode::BackTab)));
        assert_eq!(Key::parse("f5"), Ok(Key::plain(KeyCode::F(5))));
        assert!(Key::parse("hyper-x").is_err());
    }

    #[test]
    fn overrides_replace_single_keys() {
        let mut overrides = BTreeMap::new();
        overrides.insert("ctrl-p".to_string(), "promote".to_string());
        overrides.insert("p".to_string(), "none".to_string());
        let keymap = Keymap::with_overrides(&overrides).unwrap();
        assert_eq!(keymap.action(Key::ctrl('p')), Some(Action::Promote));
        assert_eq!(keymap.action(Key::char('p')), None);
        assert_eq!(keymap.action(Key::char('P')), Some(Action::PromoteFull));

        overrides.insert("x".to_string(), "explode".to_string());
        let err = Keymap::with_overrides(&overrides).unwrap_err();
        assert!(err.contains("unknown action `explode`") && err.contains("promote-full"), "{err}");
    }
}
