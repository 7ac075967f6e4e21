//! Development tools of this repository, not used by the shipped `cockpit`
//! binary: they let tests and examples stand in for real infrastructure.

pub mod fake_apiserver;
