//! Process plumbing both control planes share.
//!
//! Owns what `atoll-global` and `atoll-zone` would otherwise each write again: the options
//! every control plane has (store, work directory, REST API, diagnostics) and their typed form,
//! the async runtime and shutdown signal, opening the store with retries, and starting the
//! diagnostics and REST API servers. What is specific to a side (KDS server or client) stays in
//! that side's crate.
#![forbid(unsafe_code)]

mod entry;
pub mod host;
mod instrumented;
pub mod options;
mod servers;
mod signal;
mod store;

pub use entry::run_command;
pub use options::{AuthConfig, Common, Flags, StoreConfig};
pub use servers::{Started, start_control_plane};
pub use signal::{block_on, shutdown_signal};
