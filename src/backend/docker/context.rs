//! The build context: the files of `[service.build] context` packed into an
//! in-memory tar, minus what `.dockerignore` excludes (with the docker
//! CLI's rules), and the traceable tag a build gets.
//!
//! `.dockerignore` rules, as the docker CLI applies them: one pattern a
//! line, `#` comments, a leading `/` ignored, patterns anchored at the
//! context root, `*` and `?` never cross a `/`, `**` crosses any number of
//! directories, a pattern that matches a directory excludes everything
//! below it, `!` re-includes, and the last matching line wins. The
//! Dockerfile and `.dockerignore` themselves are always sent.

use crate::domain::Timestamp;
use globset::{GlobBuilder, GlobMatcher};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// One line of a `.dockerignore`.
#[derive(Debug, Clone)]
struct Rule {
    matcher: GlobMatcher,
    exclude: bool,
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore`; a bad pattern is an error that names it.
    pub fn parse(text: &str) -> Result<DockerIgnore, String> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclude, pattern) = match line.strip_prefix('!') {
                Some(rest) => (false, rest.trim()),
                None => (true, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!(".dockerignore: bad pattern `{line}`: {e}"))?;
            rules.push(Rule { matcher: glob.compile_matcher(), exclude });
        }
        Ok(DockerIgnore { rules })
    }

    /// Reads `<context>/.dockerignore`; none is an empty list.
    pub fn load(context: &Path) -> Result<DockerIgnore, String> {
        match std::fs::read_to_string(context.join(".dockerignore")) {
            Ok(text) => DockerIgnore::parse(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(DockerIgnore::default()),
            Err(e) => Err(format!("cannot read .dockerignore: {e}")),
        }
    }

    /// Whether `path` (relative, `/`-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            if matches_or_parent_matches(&rule.matcher, path) {
                excluded = rule.exclude;
            }
        }
        excluded
    }

    fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| !r.exclude)
    }
}

/// A pattern matches a path when it matches the path or one of its parents.
fn matches_or_parent_matches(matcher: &GlobMatcher, path: &str) -> bool {
    if matcher.is_match(path) {
        return true;
    }
    let mut end = path.len();
    while let Some(slash) = path[..end].rfind('/') {
        if matcher.is_match(&path[..slash]) {
            return true;
        }
        end = slash;
    }
    false
}

/// `filepath.Clean` for a pattern: no leading `/`, no `.` parts, no
/// trailing `/`.
fn clean(pattern: &str) -> String {
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    parts.join("/")
}

/// Packs `context` into a tar, honouring `.dockerignore`. `dockerfile` is
/// relative to the context and always included.
pub fn pack(context: &Path, dockerfile: &str) -> Result<Vec<u8>, String> {
    if !context.is_dir() {
        return Err(format!("build context {} is not a directory", context.display()));
    }
    let dockerfile_rel = clean(&dockerfile.replace('\\', "/"));
    if !context.join(&dockerfile_rel).is_file() {
        return Err(format!("no {dockerfile} in the build context {}", context.display()));
    }
    let ignore = DockerIgnore::load(context)?;
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut pending: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(dir) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(context.join(&dir))
            .map_err(|e| format!("cannot read {}: {e}", context.join(&dir).display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cannot read {}: {e}", context.join(&dir).display()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = dir.join(entry.file_name());
            let Some(name) = slash_path(&rel) else { continue };
            let kind = entry.file_type().map_err(|e| format!("cannot stat {name}: {e}"))?;
            let always = name == dockerfile_rel || name == ".dockerignore";
            let excluded = !always && ignore.excludes(&name);
            if kind.is_dir() {
                // An excluded directory is still walked when a later `!`
                // line may bring part of it back.
                if excluded && !ignore.has_exceptions() {
                    continue;
                }
                if !excluded {
                    builder.append_dir(&rel, entry.path()).map_err(|e| format!("cannot pack {name}: {e}"))?;
                }
                pending.push(rel);
            } else if !excluded {
                builder.append_path_with_name(entry.path(), &rel).map_err(|e| format!("cannot pack {name}: {e}"))?;
            }
        }
    }
    builder.into_inner().map_err(|e| format!("cannot finish the build context: {e}"))
}

/// A relative path with `/` separators; `None` for anything else.
fn slash_path(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

/// The tag a build of `context` gets: the git short commit (`-dirty` with
/// uncommitted changes) when the context is in a git repository, else the
/// UTC time `YYYYMMDD-HHMMSS`.
pub fn tag_for(context: &Path, now: Timestamp) -> String {
    git_tag(context).unwrap_or_else(|| timestamp_tag(now))
}

fn git_tag(context: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        let output = Command::new("git").arg("-C").arg(context).args(args).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).filter(|c| !c.is_empty())?;
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{commit}-dirty") } else { commit })
}

/// `YYYYMMDD-HHMMSS` in UTC.
pub fn timestamp_tag(now: Timestamp) -> String {
    // `rfc3339` is `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    let text = now.rfc3339();
    let (date, time) = text.split_once('T').unwrap_or((&text, ""));
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    format!("{}-{}", digits(date), digits(time.get(..8).unwrap_or(time)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_follows_the_docker_cli() {
        let ignore =
            DockerIgnore::parse("# comment\n/target\n*.log\n**/node_modules\nsecrets/\n!secrets/keep.txt\n").unwrap();
        assert!(ignore.excludes("target"));
        assert!(ignore.excludes("target/debug/app"), "a matched directory excludes what is below it");
        assert!(ignore.excludes("app.log"));
        assert!(!ignore.excludes("logs/app.log"), "`*` is anchored at the root and does not cross `/`");
        assert!(ignore.excludes("web/node_modules/x.js"));
        assert!(ignore.excludes("secrets/key.pem"));
        assert!(!ignore.excludes("secrets/keep.txt"), "`!` re-includes");
        assert!(!ignore.excludes("src/main.rs"));
    }

    #[test]
    fn the_context_leaves_out_ignored_files_but_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(root.join(".dockerignore"), "Dockerfile\n*.tmp\nbig\n").unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("b.tmp"), "b").unwrap();
        std::fs::create_dir(root.join("big")).unwrap();
        std::fs::write(root.join("big/blob"), "x").unwrap();
        let tar = pack(root, "Dockerfile").unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "a.txt"]);
    }

    #[test]
    fn a_missing_dockerfile_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = pack(dir.path(), "Dockerfile.dev").unwrap_err();
        assert!(err.contains("no Dockerfile.dev"), "{err}");
    }

    #[test]
    fn timestamp_tags_are_utc() {
        // 2024-03-05T07:08:09Z
        assert_eq!(timestamp_tag(Timestamp(1_709_622_489_000)), "20240305-070809");
    }
}
