//! An API over a fresh SQLite store, driven in process through its router.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use wharf_api::auth::{generate_api_key, hash_api_key};
use wharf_api::{ApiConfig, ApiState};
use wharf_build::builder::{Builder, BuilderConfig};
use wharf_dynos::{DynoManager, DynoManagerConfig};
use wharf_model::Email;
use wharf_store::Store;

pub struct TestApi {
    pub router: Router,
    /// The state behind the router, for tests that drive the server's own tasks.
    pub state: ApiState,
    pub admin_key: String,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestApi {
    pub async fn new() -> TestApi {
        TestApi::with_addons(wharf_addons::Registry::new()).await
    }

    /// An API offering the add-on services of `registry`.
    pub async fn with_addons(registry: wharf_addons::Registry) -> TestApi {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/wharf.db", dir.path().display()))
            .await
            .unwrap();
        let admin_key = generate_api_key();
        store
            .bootstrap_admin(
                &Email::parse("admin@example.com").unwrap(),
                &hash_api_key(&admin_key),
            )
            .await
            .unwrap()
            .unwrap();
        let builder = Builder::new(store.clone(), BuilderConfig::new(dir.path()));
        let (runtime, _) = builder.containers().await.unwrap().clone();
        let dynos = DynoManager::new(
            store.clone(),
            DynoManagerConfig::new(dir.path()),
            runtime,
            builder.stacks().clone(),
        );
        let state = ApiState::new(
            store.clone(),
            ApiConfig {
                public_url: "http://127.0.0.1:5000".into(),
                base_domain: "localhost".into(),
                router_port: 8080,
                data_dir: dir.path().to_owned(),
                internal_url: "http://127.0.0.1:5000".into(),
                wharf_binary: "/bin/false".into(),
                rendezvous_port: 5001,
                session_lifetime: std::time::Duration::from_secs(3600),
            },
            builder,
            dynos,
        )
        .with_addons(registry);
        TestApi {
            router: wharf_api::router(state.clone()),
            state,
            admin_key,
            _dir: dir,
        }
    }

    /// Creates a user through the API and returns its key.
    pub async fn user(&self, email: &str) -> String {
        let reply = self
            .call(
                "POST",
                "/users",
                Some(&self.admin_key),
                Some(serde_json::json!({ "email": email })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["api_key"].as_str().unwrap().to_owned()
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.request(method, path, key, &[], body.map(|b| b.to_string()))
            .await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let mut builder = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path);
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("accept"))
        {
            builder = builder.header("accept", "application/vnd.heroku+json; version=3");
        }
        if let Some(key) = key {
            builder = builder.header("authorization", format!("Bearer {key}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Creates an app owned by the holder of `key`.
    pub async fn app(&self, key: &str, name: &str) {
        let reply = self
            .call(
                "POST",
                "/apps",
                Some(key),
                Some(serde_json::json!({ "name": name })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }

    /// Records a slug with these process types and releases it.
    pub async fn deploy(&self, key: &str, app: &str, types: Value) -> Value {
        let slug = self
            .call(
                "POST",
                &format!("/apps/{app}/slugs"),
                Some(key),
                Some(serde_json::json!({ "process_types": types, "commit": "1a2b3c4d5e6f" })),
            )
            .await;
        assert_eq!(slug.status, StatusCode::CREATED, "{:?}", slug.body);
        let release = self
            .call(
                "POST",
                &format!("/apps/{app}/releases"),
                Some(key),
                Some(serde_json::json!({ "slug": slug.body["id"] })),
            )
            .await;
        assert_eq!(release.status, StatusCode::CREATED, "{:?}", release.body);
        release.body
    }
}
