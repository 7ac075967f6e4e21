//! Rebuilding a service's image: the context packed in memory, sent to the
//! engine's classic builder, its output streamed into `SourceEvent::Build`
//! updates as it comes.
//!
//! The classic builder prints `Step 3/7 : RUN make` before each
//! instruction (in chunks that do not always end at a line end), then the
//! instruction's output, and ends with an `errorDetail` when a step fails.
//! Output lines are sanitised like log lines before they are kept.

use super::context;
use crate::clock::Clock;
use crate::domain::logs::sanitize;
use crate::event::{BuildStatus, SourceEvent};
use crate::state::Msg;
use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// Output lines a build keeps (the newest).
pub const OUTPUT_LINES: usize = 200;
/// Updates are sent at most this often, and on every new step.
const UPDATE_EVERY: Duration = Duration::from_millis(150);

/// What to build, resolved from `[service.build]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// Absolute, or relative to the working directory.
    pub context: PathBuf,
    pub dockerfile: String,
    /// The repository part: `shop/api` (a tag in the config is replaced).
    pub image: String,
}

/// `shop/api:dev` → `shop/api`; a registry port is not a tag.
pub fn repository(image: &str) -> &str {
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].find(':') {
        Some(colon) => &image[..name_start + colon],
        None => image,
    }
}

/// The build as it goes: steps, the newest output lines, the line being
/// received.
#[derive(Debug, Clone)]
pub struct Progress {
    pub step: u32,
    pub of: u32,
    /// The current step's instruction, e.g. `RUN make`.
    pub instruction: String,
    pub output: Vec<String>,
    partial: Vec<u8>,
    max_line: usize,
}

impl Progress {
    pub fn new(max_line: usize) -> Progress {
        Progress { step: 0, of: 0, instruction: String::new(), output: Vec::new(), partial: Vec::new(), max_line }
    }

    /// Takes a chunk of builder output; true when a new step started.
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        let mut new_step = false;
        self.partial.extend_from_slice(chunk);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            new_step |= self.line(&line[..line.len() - 1]);
        }
        new_step
    }

    /// Whatever is left without a line end.
    pub fn flush(&mut self) -> bool {
        if self.partial.is_empty() {
            return false;
        }
        let line = std::mem::take(&mut self.partial);
        self.line(&line)
    }

    fn line(&mut self, raw: &[u8]) -> bool {
        let (text, _) = sanitize(raw, self.max_line);
        if text.trim().is_empty() {
            return false;
        }
        let new_step = match parse_step(&text) {
            Some((step, of, instruction)) => {
                self.step = step;
                self.of = of;
                self.instruction = instruction.to_owned();
                true
            }
            None => false,
        };
        self.output.push(text);
        if self.output.len() > OUTPUT_LINES {
            let extra = self.output.len() - OUTPUT_LINES;
            self.output.drain(..extra);
        }
        new_step
    }
}

/// `Step 3/7 : RUN make` → (3, 7, "RUN make").
pub fn parse_step(line: &str) -> Option<(u32, u32, &str)> {
    let rest = line.trim_start().strip_prefix("Step ")?;
    let (counts, instruction) = rest.split_once(" : ").unwrap_or((rest.trim_end(), ""));
    let (step, of) = counts.trim().split_once('/')?;
    Some((step.parse().ok()?, of.parse().ok()?, instruction.trim()))
}

/// What a failed build says: the failing step, its instruction and the
/// engine's error.
pub fn failure(progress: &Progress, message: &str) -> String {
    if progress.step == 0 {
        return message.to_owned();
    }
    format!("step {}/{} `{}`: {message}", progress.step, progress.of, progress.instruction)
}

/// Builds `spec` as `<image>:<tag>`, sending `Build` updates for `service`
/// as it goes. Returns the final status, which the caller sends (once it
/// has noted that the build is over, so that a rebuild asked for on seeing
/// it is not refused as running).
pub async fn run(
    docker: Docker,
    service: String,
    spec: BuildSpec,
    network: Option<String>,
    clock: Clock,
    events: mpsc::Sender<Msg>,
    max_line: usize,
) -> BuildStatus {
    let started = clock.now();
    let mut status =
        BuildStatus { step: 0, of: 0, started, finished: None, tag: None, error: None, output: Vec::new() };
    let send = |status: &BuildStatus| {
        let event = SourceEvent::Build { service: service.clone(), build: status.clone() };
        let events = events.clone();
        async move {
            let _ = events.send(Msg::Source(event)).await;
        }
    };
    send(&status).await;

    let context = spec.context.clone();
    let dockerfile = spec.dockerfile.clone();
    let packed = tokio::task::spawn_blocking(move || {
        let tag = context::tag_for(&context, started);
        context::pack(&context, &dockerfile).map(|tar| (tag, tar))
    })
    .await
    .map_err(|e| format!("packing the build context stopped: {e}"))
    .and_then(|r| r);
    let (tag, tar) = match packed {
        Ok(packed) => packed,
        Err(error) => {
            status.error = Some(error);
            status.finished = Some(clock.now());
            return status;
        }
    };
    let full_tag = format!("{}:{tag}", repository(&spec.image));
    let mut options =
        BuildImageOptionsBuilder::default().dockerfile(&spec.dockerfile).t(&full_tag).rm(true).forcerm(true);
    if let Some(network) = &network {
        options = options.networkmode(network);
    }
    let mut progress = Progress::new(max_line);
    let mut error = None;
    let mut last_sent = tokio::time::Instant::now();
    let mut stream = docker.build_image(options.build(), None, Some(bollard::body_full(tar.into())));
    while let Some(item) = stream.next().await {
        let mut new_step = false;
        match item {
            Ok(info) => {
                if let Some(text) = &info.stream {
                    new_step = progress.feed(text.as_bytes());
                }
                if let Some(detail) = info.error_detail {
                    let message = detail.message.unwrap_or_else(|| "the build failed".into());
                    error = Some(failure(&progress, &sanitize(message.as_bytes(), max_line).0));
                }
            }
            Err(e) => {
                error = Some(failure(&progress, &super::describe(&e)));
                break;
            }
        }
        if new_step || last_sent.elapsed() >= UPDATE_EVERY {
            status.step = progress.step;
            status.of = progress.of;
            status.output = progress.output.clone();
            send(&status).await;
            last_sent = tokio::time::Instant::now();
        }
    }
    progress.flush();
    status.step = progress.step;
    status.of = progress.of;
    status.output = progress.output;
    status.finished = Some(clock.now());
    match error {
        Some(error) => status.error = Some(error),
        None => status.tag = Some(full_tag),
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_read_from_chunks_that_split_lines() {
        let mut p = Progress::new(4096);
        assert!(!p.feed(b"Step 1/3 : FROM scratch"));
        assert!(p.feed(b"\n"));
        p.feed(b" ---> \nStep 2/3 : COPY busybox /bin/busybox\n ---> 6fff\n");
        assert_eq!((p.step, p.of, p.instruction.as_str()), (2, 3, "COPY busybox /bin/busybox"));
        p.feed(b"Step 3/3 : RUN [\"/bin/busybox\",\"false\"]\n\x1b[31mred\x1b[0m\n");
        assert_eq!((p.step, p.of), (3, 3));
        assert_eq!(p.output.last().map(String::as_str), Some("red"), "output is sanitised");
        let error = failure(&p, "The command '/bin/busybox false' returned a non-zero code: 1");
        assert_eq!(
            error,
            "step 3/3 `RUN [\"/bin/busybox\",\"false\"]`: The command '/bin/busybox false' returned a non-zero code: 1"
        );
    }

    #[test]
    fn the_configured_tag_is_replaced() {
        assert_eq!(repository("shop/api:dev"), "shop/api");
        assert_eq!(repository("localhost:5000/shop/api"), "localhost:5000/shop/api");
        assert_eq!(repository("api"), "api");
    }
}
