//! Calico resources (in progress).
