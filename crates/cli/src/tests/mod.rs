//! Tests of whole commands against a canned HTTP server: the requests the CLI sends and
//! the text it prints.

mod apps;
mod auth;
mod config;
mod fixtures;
mod formation;
mod harness;
mod parsing;
mod releases;
mod server;
