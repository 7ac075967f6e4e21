//! Colours. Themes are TOML files (`themes/*.toml`, built in; or a path);
//! `NO_COLOR` gives a theme that uses only bold, reverse and underline.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::path::Path;
use std::str::FromStr;

const BUILT_IN: [(&str, &str); 3] = [
    ("dark", include_str!("../themes/dark.toml")),
    ("light", include_str!("../themes/light.toml")),
    ("high-contrast", include_str!("../themes/high-contrast.toml")),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub dim: Style,
    pub faint: Style,
    pub accent: Style,
    pub ok: Style,
    pub warn: Style,
    pub bad: Style,
    pub canary: Style,
    pub border: Style,
    pub border_focus: Style,
    pub selection: Style,
    pub matched: Style,
    pub current_match: Style,
    pub simulated: Style,
    pub pods: Vec<Style>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    colors: Colors,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Colors {
    text: String,
    dim: String,
    faint: String,
    accent: String,
    ok: String,
    warn: String,
    bad: String,
    canary: String,
    border: String,
    border_focus: String,
    selection_fg: String,
    selection_bg: String,
    match_fg: String,
    match_bg: String,
    current_match_bg: String,
    simulated_fg: String,
    simulated_bg: String,
    pods: Vec<String>,
}

impl Default for Theme {
    fn default() -> Self {
        Theme::parse(BUILT_IN[0].1).unwrap_or_else(|_| Theme::monochrome())
    }
}

impl Theme {
    pub fn built_in_names() -> impl Iterator<Item = &'static str> {
        BUILT_IN.iter().map(|(name, _)| *name)
    }

    /// A built-in name, or a path to a theme file.
    pub fn load(name_or_path: &str) -> Result<Theme, String> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(name, _)| *name == name_or_path) {
            return Theme::parse(text);
        }
        let path = Path::new(name_or_path);
        if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            return Theme::parse(&text).map_err(|e| format!("{}: {e}", path.display()));
        }
        let names: Vec<_> = Theme::built_in_names().collect();
        Err(format!("no theme `{name_or_path}`: use one of {} or a path to a theme file", names.join(", ")))
    }

    pub fn parse(text: &str) -> Result<Theme, String> {
        let file: ThemeFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let c = &file.colors;
        let color = |value: &str| Color::from_str(value).map_err(|_| format!("`{value}` is not a colour"));
        let fg = |value: &str| color(value).map(|c| Style::new().fg(c));
        let pods = c.pods.iter().map(|p| fg(p)).collect::<Result<Vec<_>, _>>()?;
        if pods.is_empty() {
            return Err("colors.pods needs at least one colour".into());
        }
        Ok(Theme {
            name: file.name,
            text: fg(&c.text)?,
            dim: fg(&c.dim)?,
            faint: fg(&c.faint)?,
            accent: fg(&c.accent)?.add_modifier(Modifier::BOLD),
            ok: fg(&c.ok)?,
            warn: fg(&c.warn)?,
            bad: fg(&c.bad)?.add_modifier(Modifier::BOLD),
            canary: fg(&c.canary)?,
            border: fg(&c.border)?,
            border_focus: fg(&c.border_focus)?,
            selection: Style::new().fg(color(&c.selection_fg)?).bg(color(&c.selection_bg)?),
            matched: Style::new().fg(color(&c.match_fg)?).bg(color(&c.match_bg)?),
            current_match: Style::new().fg(color(&c.match_fg)?).bg(color(&c.current_match_bg)?),
            simulated: Style::new()
                .fg(color(&c.simulated_fg)?)
                .bg(color(&c.simulated_bg)?)
                .add_modifier(Modifier::BOLD),
            pods,
        })
    }

    /// For `NO_COLOR`: meaning carried by weight and reverse video only.
    pub fn monochrome() -> Theme {
        let plain = Style::new();
        Theme {
            name: "no-color".into(),
            text: plain,
            dim: plain,
            faint: plain,
            accent: plain.add_modifier(Modifier::BOLD),
            ok: plain,
            warn: plain.add_modifier(Modifier::BOLD),
            bad: plain.add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            canary: plain.add_modifier(Modifier::ITALIC),
            border: plain,
            border_focus: plain.add_modifier(Modifier::BOLD),
            selection: plain.add_modifier(Modifier::REVERSED),
            matched: plain.add_modifier(Modifier::UNDERLINED),
            current_match: plain.add_modifier(Modifier::REVERSED | Modifier::UNDERLINED),
            simulated: plain.add_modifier(Modifier::REVERSED | Modifier::BOLD),
            pods: vec![plain],
        }
    }

    /// A stable colour for a pod, from its name.
    pub fn pod(&self, name: &str) -> Style {
        // FNV-1a: stable across runs and platforms, unlike the std hasher.
        let hash =
            name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        self.pods[(hash % self.pods.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_theme_parses() {
        for name in Theme::built_in_names() {
            let theme = Theme::load(name).unwrap();
            assert_eq!(theme.name, name);
        }
    }

    #[test]
    fn bad_themes_say_what_is_wrong() {
        assert!(Theme::load("neon").unwrap_err().contains("high-contrast"));
        let text = include_str!("../themes/dark.toml").replace("\"cyan\"", "\"not-a-colour\"");
        assert!(Theme::parse(&text).unwrap_err().contains("not-a-colour"));
    }

    #[test]
    fn pod_colours_are_stable() {
        let theme = Theme::default();
        assert_eq!(theme.pod("checkout-7d9f-abc"), theme.pod("checkout-7d9f-abc"));
    }
}
