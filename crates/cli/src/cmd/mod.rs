pub mod eval;
pub mod selector;
