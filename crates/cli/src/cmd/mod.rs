pub mod agent;
pub mod calc;
pub mod client;
pub mod datastore;
pub mod eval;
pub mod health;
pub mod selector;
pub mod server;
