//! particast
