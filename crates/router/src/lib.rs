//! Wharf's HTTP router: takes every request for `<app>.<base-domain>` (and an app's custom
//! domains) and sends it to one of the app's web dynos, adding little latency, dropping no
//! request while dynos come and go, and explaining every failure with Heroku's error codes.
//!
//! The dyno manager publishes a [`RouteTable`] over a `tokio::sync::watch` channel; the router
//! never calls the store, so traffic survives a store outage. Each request ends in one
//! [`RouterLogLine`] handed to the `log` callback with the app's id.
//!
//! Pure parts: [`table::decide`], [`affinity`] (signed session affinity cookies) (serve, hold or refuse), [`host`] matching, [`balance::pick`],
//! [`headers`] rewriting, [`error`] mapping and the [`logline`] format. IO: [`pool`] (dyno
//! connections), `upstream` (HTTP/1.1 to dynos), `body` (streaming with idle timeouts), `proxy` (one request), [`server`]
//! (listeners and shutdown), and [`tls`] (certificates by SNI).

pub mod affinity;
pub mod balance;
mod body;
pub mod config;
pub mod error;
pub mod headers;
pub mod host;
pub mod logline;
pub mod pages;
pub mod pool;
mod proxy;
mod record;
pub mod server;
pub mod table;
pub mod tls;
mod upstream;

pub use affinity::AffinityKey;
pub use balance::Balancing;
pub use config::{RouterConfig, Timeouts};
pub use error::{ClientError, DynoError, Fault, PlatformError, RouterError};
pub use logline::RouterLogLine;
pub use proxy::HeldRequests;
pub use server::Router;
pub use table::{AppRoutes, Backend, RouteTable};
pub use tls::CertResolver;
