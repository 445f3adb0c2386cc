//! Heroku's `Range` paging: `Range: version ..; max=15, order=desc` selects a page of a list,
//! and a response that leaves more answers `206 Partial Content` with a `Next-Range` header to
//! send for the rest. The last page answers `200` and has no `Next-Range`.

use axum::http::header::HeaderMap;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::ApiError;

/// Items per page when the client names no `max`.
pub const DEFAULT_MAX: u32 = 200;
/// The most items one page may hold.
pub const MAX_MAX: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

impl Order {
    fn as_str(self) -> &'static str {
        match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        }
    }
}

/// A parsed `Range` header. `start` is where iteration begins (in `order`), skipped itself when
/// `start_exclusive` (`]value..`); `end` is inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSpec {
    pub field: String,
    pub start: Option<String>,
    pub start_exclusive: bool,
    pub end: Option<String>,
    pub max: u32,
    pub order: Order,
}

impl RangeSpec {
    /// The whole list in `default_order`, first page.
    pub fn all(field: &str, default_order: Order) -> RangeSpec {
        RangeSpec {
            field: field.to_owned(),
            start: None,
            start_exclusive: false,
            end: None,
            max: DEFAULT_MAX,
            order: default_order,
        }
    }

    /// Reads the `Range` header. `fields` are the fields this list can be ordered by; the first
    /// is the default. An absent or empty header means the first page in `default_order`.
    pub fn from_headers(
        headers: &HeaderMap,
        fields: &[&str],
        default_order: Order,
    ) -> Result<RangeSpec, ApiError> {
        let raw = match headers.get("range") {
            Some(value) => value
                .to_str()
                .map_err(|_| ApiError::bad_request("Range header is not valid text"))?,
            None => "",
        };
        parse(raw, fields, default_order)
    }

    /// The `Next-Range` that continues after `last` (the key of this page's last item).
    pub fn next_after(&self, last: &str) -> String {
        format!(
            "{} ]{}..; max={}, order={}",
            self.field,
            last,
            self.max,
            self.order.as_str()
        )
    }
}

pub fn parse(raw: &str, fields: &[&str], default_order: Order) -> Result<RangeSpec, ApiError> {
    let mut spec = RangeSpec::all(fields[0], default_order);
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(spec);
    }
    let (range, options) = raw.split_once(';').unwrap_or((raw, ""));
    let mut parts = range.split_whitespace();
    let field = parts.next().unwrap_or(fields[0]);
    if !fields.contains(&field) {
        return Err(ApiError::bad_request(format!(
            "Range field {field:?} is not one of {}",
            fields.join(", ")
        )));
    }
    spec.field = field.to_owned();
    if let Some(bounds) = parts.next() {
        let (start, end) = bounds.split_once("..").ok_or_else(|| {
            ApiError::bad_request(format!(
                "Range {raw:?} is malformed: expected `{field} [start]..[end]; max=N, order=asc|desc`"
            ))
        })?;
        let (start, exclusive) = match start.strip_prefix(']') {
            Some(rest) => (rest, true),
            None => (start, false),
        };
        spec.start = (!start.is_empty()).then(|| start.to_owned());
        spec.start_exclusive = exclusive;
        spec.end = (!end.is_empty()).then(|| end.to_owned());
    }
    for option in options
        .split([',', ';'])
        .map(str::trim)
        .filter(|o| !o.is_empty())
    {
        match option.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("max", value)) => {
                let max: u32 = value.parse().map_err(|_| {
                    ApiError::bad_request(format!("Range max {value:?} is not a number"))
                })?;
                spec.max = max.clamp(1, MAX_MAX);
            }
            Some(("order", "asc")) => spec.order = Order::Asc,
            Some(("order", "desc")) => spec.order = Order::Desc,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Range option {option:?} is not understood: use max=N and order=asc|desc"
                )))
            }
        }
    }
    Ok(spec)
}

/// One page of a list, and the key to continue after when more remain.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_range: Option<String>,
}

/// Pages an in-memory list by a text key (for lists that stay small: apps, collaborators,
/// formation, sizes).
pub fn page_by<T>(mut items: Vec<T>, key: impl Fn(&T) -> String, spec: &RangeSpec) -> Page<T> {
    items.sort_by_key(|item| key(item));
    if spec.order == Order::Desc {
        items.reverse();
    }
    let before_start = |k: &str| match (&spec.start, spec.order) {
        (None, _) => false,
        (Some(start), Order::Asc) => k < start.as_str() || (spec.start_exclusive && k == start),
        (Some(start), Order::Desc) => k > start.as_str() || (spec.start_exclusive && k == start),
    };
    let after_end = |k: &str| match (&spec.end, spec.order) {
        (None, _) => false,
        (Some(end), Order::Asc) => k > end.as_str(),
        (Some(end), Order::Desc) => k < end.as_str(),
    };
    let mut selected: Vec<T> = items
        .into_iter()
        .filter(|item| {
            let k = key(item);
            !before_start(&k) && !after_end(&k)
        })
        .collect();
    let more = selected.len() > spec.max as usize;
    selected.truncate(spec.max as usize);
    let next_range = if more {
        selected.last().map(|last| spec.next_after(&key(last)))
    } else {
        None
    };
    Page {
        items: selected,
        next_range,
    }
}

impl<T: Serialize> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        match self.next_range {
            Some(next) => {
                let mut response = (StatusCode::PARTIAL_CONTENT, Json(self.items)).into_response();
                if let Ok(value) = HeaderValue::from_str(&next) {
                    response.headers_mut().insert("next-range", value);
                }
                response
            }
            None => Json(self.items).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: (&str, Option<&str>, bool, Option<&str>, u32, Order)) {
        let spec = parse(raw, &["version", "id"], Order::Asc).expect(raw);
        let (field, start, exclusive, end, max, order) = expected;
        assert_eq!(
            spec,
            RangeSpec {
                field: field.into(),
                start: start.map(Into::into),
                start_exclusive: exclusive,
                end: end.map(Into::into),
                max,
                order,
            },
            "{raw:?}"
        );
    }

    #[test]
    fn ranges_the_heroku_cli_sends() {
        check(
            "version ..; max=15, order=desc",
            ("version", None, false, None, 15, Order::Desc),
        );
        check(
            "version ..; order=desc,max=1",
            ("version", None, false, None, 1, Order::Desc),
        );
        check(
            "id ..; max=1000;",
            ("id", None, false, None, 1000, Order::Asc),
        );
        check("", ("version", None, false, None, DEFAULT_MAX, Order::Asc));
        check(
            "version ]5..; max=15, order=desc",
            ("version", Some("5"), true, None, 15, Order::Desc),
        );
        check(
            "version 2..4",
            (
                "version",
                Some("2"),
                false,
                Some("4"),
                DEFAULT_MAX,
                Order::Asc,
            ),
        );
        check(
            "version ..; max=99999",
            ("version", None, false, None, MAX_MAX, Order::Asc),
        );
    }

    #[test]
    fn bad_ranges_say_why() {
        for raw in [
            "name ..",
            "version 5",
            "version ..; max=lots",
            "version ..; order=up",
        ] {
            let err = parse(raw, &["version"], Order::Asc).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{raw}");
        }
    }

    #[test]
    fn paging_walks_the_whole_list_without_repeats() {
        let items: Vec<String> = (0..7).map(|i| format!("app-{i}")).collect();
        for order in [Order::Asc, Order::Desc] {
            let mut spec = RangeSpec::all("name", order);
            spec.max = 3;
            let mut seen = Vec::new();
            loop {
                let page = page_by(items.clone(), Clone::clone, &spec);
                seen.extend(page.items);
                match page.next_range {
                    Some(next) => spec = parse(&next, &["name"], order).unwrap(),
                    None => break,
                }
            }
            let mut expected = items.clone();
            if order == Order::Desc {
                expected.reverse();
            }
            assert_eq!(seen, expected);
        }
    }

    #[test]
    fn the_last_page_has_no_next_range() {
        let page = page_by(
            vec!["a".to_string(), "b".into()],
            Clone::clone,
            &RangeSpec::all("name", Order::Asc),
        );
        assert!(page.next_range.is_none());
        assert_eq!(page.items.len(), 2);
    }
}
