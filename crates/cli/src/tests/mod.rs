//! Tests of whole commands against a canned HTTP server: the requests the CLI sends and
//! the text it prints.

mod auth;
mod commands;
mod fixtures;
mod harness;
mod parsing;
mod server;
