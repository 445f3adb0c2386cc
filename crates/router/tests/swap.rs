//! Deploys without dropped requests: client loops keep sending while the route table moves
//! from one dyno to another, and the old dyno stops.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::*;
use hyper::Response;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const LOOPS: usize = 4;
/// Each loop stops after this many requests, whatever happens.
const MAX_REQUESTS_PER_LOOP: usize = 20_000;

/// Client loops, each on its own keep-alive connection, recording who served each request
/// and every failure.
struct Traffic {
    served: Arc<Mutex<Vec<(usize, String)>>>,
    failures: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
    loops: Vec<JoinHandle<()>>,
}

impl Traffic {
    fn start(addr: SocketAddr) -> Traffic {
        let served: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
        let failures: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = CancellationToken::new();
        let loops = (0..LOOPS)
            .map(|n| {
                let (served, failures, stop) = (served.clone(), failures.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut client = Client::connect(addr).await;
                    for _ in 0..MAX_REQUESTS_PER_LOOP {
                        if stop.is_cancelled() {
                            break;
                        }
                        match client.get("myapp.wharf.test", "/").await {
                            Ok(reply) if reply.status == 200 => {
                                served.lock().unwrap().push((n, reply.body))
                            }
                            Ok(reply) => failures
                                .lock()
                                .unwrap()
                                .push(format!("{}: {}", reply.status, reply.body)),
                            Err(error) => {
                                failures.lock().unwrap().push(error.to_string());
                                client = Client::connect(addr).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Traffic {
            served,
            failures,
            stop,
            loops,
        }
    }

    /// Waits until every loop was served by `dyno` at least `times` times.
    async fn each_served_by(&self, dyno: &str, times: usize) {
        wait_for(&format!("every loop served by {dyno}"), || {
            let served = self.served.lock().unwrap();
            (0..LOOPS).all(|n| served.iter().filter(|(m, b)| *m == n && b == dyno).count() >= times)
        })
        .await;
    }

    /// Stops the loops; returns what each was served, in order, and the failures.
    async fn stop(self) -> (Vec<Vec<String>>, Vec<String>) {
        self.stop.cancel();
        for handle in self.loops {
            handle.await.unwrap();
        }
        let served = self.served.lock().unwrap().clone();
        let per_loop = (0..LOOPS)
            .map(|n| {
                served
                    .iter()
                    .filter(|(m, _)| *m == n)
                    .map(|(_, b)| b.clone())
                    .collect()
            })
            .collect();
        let failures = self.failures.lock().unwrap().clone();
        (per_loop, failures)
    }
}

/// Once a loop was served by B, it never is by A again.
fn check_moved_for_good(per_loop: &[Vec<String>]) {
    for (n, bodies) in per_loop.iter().enumerate() {
        let first_b = bodies.iter().position(|b| b == "B").unwrap();
        assert!(
            bodies[first_b..].iter().all(|b| b == "B"),
            "loop {n}: {bodies:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failures_while_the_table_moves_from_one_dyno_to_another() {
    let in_flight_started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (started, gate) = (in_flight_started.clone(), release.clone());
    let a = Upstream::start(move |req| {
        let (started, gate) = (started.clone(), gate.clone());
        async move {
            if req.uri().path() == "/slow" {
                started.notify_one();
                gate.notified().await;
            }
            Response::new(full("A"))
        }
    })
    .await;
    let b = Upstream::text("B").await;
    let router = Harness::start(table([app("myapp", &[a.addr])])).await;

    // A request that is in flight on A when A leaves the table.
    let addr = router.addr;
    let slow = tokio::spawn(async move { get_once(addr, "myapp.wharf.test", "/slow").await });
    in_flight_started.notified().await;

    let traffic = Traffic::start(addr);
    traffic.each_served_by("A", 1).await;
    router.set_table(table([app("myapp", &[b.addr])]));
    // Every loop gets B a few times; then nothing can be in flight to A but the slow request.
    traffic.each_served_by("B", 5).await;
    release.notify_one();
    let slow = slow.await.unwrap();
    assert_eq!(
        (slow.status, slow.body.as_str()),
        (200, "A"),
        "the request in flight on A finishes"
    );
    a.stop().await;
    // With A gone, traffic goes on.
    traffic.each_served_by("B", 25).await;
    let (per_loop, failures) = traffic.stop().await;
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    check_moved_for_good(&per_loop);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failures_when_the_old_dyno_stops_right_after_the_swap() {
    let a = Upstream::text("A").await;
    let b = Upstream::text("B").await;
    let router = Harness::start(table([app("myapp", &[a.addr])])).await;
    let traffic = Traffic::start(router.addr);
    traffic.each_served_by("A", 20).await;
    // The old dyno stops at once: requests that picked it meet a closed port or a closing
    // keep-alive connection, and go to B.
    router.set_table(table([app("myapp", &[b.addr])]));
    a.stop().await;
    traffic.each_served_by("B", 50).await;
    let (per_loop, failures) = traffic.stop().await;
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    check_moved_for_good(&per_loop);
    b.stop().await;
}
