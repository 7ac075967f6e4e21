//! cockpit: a terminal developer cockpit for teams that run microservices.
//!
//! Data flows one way: sources (`backend`) send owned events, `state::update`
//! folds them into `AppState`, `ui::draw` renders the state. Keys flow the
//! other way: key → `Action` → `update` → `Effect` → `executor` (stage
//! policy, read-only, confirmation, audit) → backend → events.

pub mod action;
pub mod app;
pub mod audit;
pub mod backend;
pub mod clock;
pub mod compose;
pub mod config;
pub mod devtools;
pub mod domain;
pub mod event;
pub mod executor;
pub mod headless;
pub mod logging;
pub mod state;
pub mod theme;
pub mod tui;
pub mod ui;
