//! `/api/admin/audit`: the audit log (`callboard.audit.read`).
//!
//! - `GET /audit?before=<id>&limit=<n>`: `{"items": [{id, at, actor, action,
//!   target, detail}], "next": <id or null>}`, newest first; `limit`
//!   defaults to 100 and is cut to 1000; `next` is the `before` of the next
//!   page.
//! - `GET /audit/export?format=csv|jsonl`: every entry, newest first,
//!   streamed as an attachment while the store is read 1000 entries at a
//!   time (a client that goes away stops the reading).
//!
//! The CSV is RFC 4180 (fields holding a comma, quote or line break are
//! quoted, quotes doubled), and a field that a spreadsheet would run as a
//! formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets
//! a leading `'`.

use std::{
    collections::HashMap,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{Query, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use callboard_store::access::{AuditRow, MAX_AUDIT_PAGE};
use serde_json::{Value, json};

use super::{rfc3339, store_error};
use crate::{api::admin::AdminApi, api::error::ApiError};

/// Entries a page holds when the caller names no `limit`.
pub const DEFAULT_PAGE: usize = 100;

/// The routes, relative to `/api/admin`.
pub(super) fn routes() -> Router<AdminApi> {
    Router::new()
        .route("/audit", get(page))
        .route("/audit/export", get(export))
}

/// One entry as the API and the export show it.
pub fn describe(row: &AuditRow) -> Value {
    json!({
        "id": row.id,
        "at": rfc3339(row.at_ms),
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "detail": row.detail,
    })
}

/// Reads a page: entries before `before` (all when `None`), newest first,
/// `limit` cut to 1..=1000; and the `before` of the next page, if there may
/// be one.
pub async fn read_page(
    state: &AdminApi,
    before: Option<i64>,
    limit: usize,
) -> Result<(Vec<AuditRow>, Option<i64>), ApiError> {
    let limit = limit.clamp(1, MAX_AUDIT_PAGE);
    let rows = state
        .stores
        .audit
        .entries(before, limit)
        .await
        .map_err(|e| store_error("read the audit log", &e))?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok((rows, next))
}

/// A query parameter parsed as a number, or a 400 naming it.
fn number<T: std::str::FromStr>(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    params
        .get(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse().map_err(|_| {
                ApiError::input(format!(
                    "`{name}` must be a non-negative integer (got \"{}\")",
                    crate::permissions::shown(v)
                ))
            })
        })
        .transpose()
}

async fn page(
    State(state): State<AdminApi>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let before = number::<u64>(&params, "before")?.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
    let limit = number::<u64>(&params, "limit")?
        .map_or(DEFAULT_PAGE, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let (rows, next) = read_page(&state, before, limit).await?;
    let items: Vec<Value> = rows.iter().map(describe).collect();
    Ok(Json(json!({ "items": items, "next": next })))
}

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Jsonl,
}

async fn export(
    State(state): State<AdminApi>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let format = match params.get("format").map(String::as_str) {
        None | Some("csv") => Format::Csv,
        Some("jsonl") => Format::Jsonl,
        Some(other) => {
            return Err(ApiError::input(format!(
                "`format` must be csv or jsonl (got \"{}\")",
                crate::permissions::shown(other)
            )));
        }
    };
    // A few pages in flight at most: the store is read as the client reads.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let log = state.stores.audit.clone();
    tokio::spawn(async move {
        if format == Format::Csv {
            let header = "id,at,actor,action,target,detail\r\n";
            if tx
                .send(Ok(Bytes::from_static(header.as_bytes())))
                .await
                .is_err()
            {
                return;
            }
        }
        let mut before = None;
        loop {
            let rows = match log.entries(before, MAX_AUDIT_PAGE).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!("audit export: {e}");
                    // The body ends in an error: the client sees a cut
                    // download, not a complete-looking file.
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let mut chunk = String::new();
            for row in &rows {
                match format {
                    Format::Csv => csv_row(row, &mut chunk),
                    Format::Jsonl => {
                        chunk.push_str(&describe(row).to_string());
                        chunk.push('\n');
                    }
                }
            }
            if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            match rows.last() {
                Some(last) if rows.len() == MAX_AUDIT_PAGE => before = Some(last.id),
                _ => return,
            }
        }
    });
    let (content_type, file) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "callboard-audit.csv"),
        Format::Jsonl => ("application/x-ndjson", "callboard-audit.jsonl"),
    };
    let mut response = Body::new(Channel(rx)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A response body fed by a channel.
pub(crate) struct Channel(pub(crate) tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for Channel {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// Appends one entry as a CSV record (CRLF-terminated).
pub fn csv_row(row: &AuditRow, out: &mut String) {
    let fields = [
        row.id.to_string(),
        rfc3339(row.at_ms),
        row.actor.clone(),
        row.action.clone(),
        row.target.clone(),
        row.detail.to_string(),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(field, out);
    }
    out.push_str("\r\n");
}

/// Appends one CSV field: a leading `'` when a spreadsheet would read it as
/// a formula, quoted (quotes doubled) when it holds a comma, quote or line
/// break.
pub fn csv_field(field: &str, out: &mut String) {
    let formula = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = field.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    if quote {
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(s: &str) -> String {
        let mut out = String::new();
        csv_field(s, &mut out);
        out
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("=1+2"), "'=1+2");
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("-1"), "'-1");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(
            field("=HYPERLINK(\"x\",\"y\")"),
            "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""
        );
        assert_eq!(field("\tx"), "'\tx");
        assert_eq!(field(""), "");
    }

    #[test]
    fn a_row_is_one_crlf_record() {
        let row = AuditRow {
            id: 7,
            at_ms: 0,
            actor: "user:default/alice".into(),
            action: "plugin.install".into(),
            target: "=cmd|' /C calc'!A0".into(),
            detail: json!({"id": "x,y"}),
        };
        let mut out = String::new();
        csv_row(&row, &mut out);
        assert_eq!(
            out,
            "7,1970-01-01T00:00:00Z,user:default/alice,plugin.install,'=cmd|' /C calc'!A0,\"{\"\"id\"\":\"\"x,y\"\"}\"\r\n"
        );
    }
}
