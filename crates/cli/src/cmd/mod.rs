//! One module per subcommand. Without the `full` feature only the sidecar's are built.

#[cfg(feature = "full")]
pub mod agent;
#[cfg(feature = "full")]
pub mod apply;
#[cfg(feature = "full")]
pub mod calc;
pub mod client;
#[cfg(feature = "full")]
pub mod datastore;
#[cfg(feature = "full")]
pub mod eval;
#[cfg(feature = "full")]
pub mod get;
pub mod health;
#[cfg(feature = "full")]
pub mod selector;
pub mod server;
