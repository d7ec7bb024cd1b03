//! The migration subcommands (`preflight`, `tracker`, `bulk`, `apply-dirty`,
//! `status`, `verify`, `control`, `migrate`): each turns its parsed
//! arguments into calls on the actors crate and prints the outcome, as text
//! for a person or as one JSON object (`--json`) for a program.

pub mod preflight;
mod step;
mod progress;
pub mod tracker;
pub mod bulk;
pub mod migrate;
pub mod status;
pub mod verify;
pub mod control;
mod output;
