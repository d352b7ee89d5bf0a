//! Paths that a snapshot's files name.
use std::path::{Component, Path};

/// A path the snapshot names stays inside it: relative, with no `..`.
pub fn inside(path: &str) -> bool {
    Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}
