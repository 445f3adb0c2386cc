//! Wharf's slug compiler: turns an app's source into a slug with buildpacks that follow the
//! classic contract (`bin/detect`, `bin/compile`, `bin/release`), and packs it.

pub use wharf_tenant_fs::archive;
pub mod builder;
pub mod buildpack;
pub mod builtin;
mod compile;
mod disk;
mod fetch;
pub mod leftovers;
pub mod log;
pub mod procfile;
pub mod release_yaml;
pub mod runtime;
mod step;
