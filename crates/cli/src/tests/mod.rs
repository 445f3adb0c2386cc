//! Tests of whole commands against a canned HTTP server: the requests the CLI sends and
//! the text it prints.

mod addons;
mod apps;
mod auth;
mod buildpack_registrations;
mod buildpacks;
mod builds;
mod config;
mod datastores;
mod deploy;
mod domains;
mod dynos;
mod fixtures;
mod formation;
mod git_credentials;
mod harness;
mod hosts;
mod logs;
mod parsing;
mod releases;
mod server;
mod stacks;
