//! The one way Wharf's root server touches trees that tenants control (a build's `/app`, its
//! cache, buildpack directories, slugs and dynos' writable layers): every path is resolved
//! beneath a directory handle, never through a symbolic link and never out of the tree.

pub mod archive;
pub mod tree;

pub use tree::{remove_tree, Entry, Kind, TreeDir, TreeError};
