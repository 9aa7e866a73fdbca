pub mod client;
pub mod eval;
pub mod health;
pub mod selector;
pub mod server;
