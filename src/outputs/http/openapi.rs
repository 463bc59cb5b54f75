//! The OpenAPI 3.1 document, built from [`ROUTES`](super::ROUTES) and the response
//! schemas below. JSON Schema 2020-12, as OpenAPI 3.1 uses it: `["string", "null"]` for
//! optional values.

use super::{JSON, Method, ParamIn, ParamType, ROUTES};
use serde_json::{Map, Value, json};

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// An object with the given properties, all required (optional ones are nullable).
fn object(props: &[(&str, Value)]) -> Value {
    let mut p = Map::new();
    for (k, v) in props {
        p.insert(k.to_string(), v.clone());
    }
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    json!({"type": "object", "properties": p, "required": required})
}

fn page(item: &str) -> Value {
    object(&[
        ("items", array(r(item))),
        (
            "next_cursor",
            json!({"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page."}),
        ),
    ])
}

fn list(item: &str) -> Value {
    object(&[("items", array(r(item)))])
}

fn figure() -> Value {
    object(&[
        ("value", nullable("number")),
        ("n", json!({"type": "integer"})),
        ("small_sample", json!({"type": "boolean"})),
    ])
}

fn schemas() -> Value {
    let int = || json!({"type": "integer"});
    let num = || json!({"type": "number"});
    let s = || json!({"type": "string"});
    let time = || json!({"type": "string", "format": "date-time"});
    let error = object(&[(
        "error",
        object(&[
            (
                "code",
                json!({"type": "string", "enum": ["unauthorized", "forbidden", "not_found", "bad_request", "method_not_allowed", "internal", "unavailable"]}),
            ),
            ("message", s()),
        ]),
    )]);
    let customer_summary = object(&[
        ("customer_id", s()),
        ("display_name", nullable("string")),
        ("interactions", int()),
        ("sources", int()),
    ]);
    let link_suggestion = json!({"type": "object", "description": "A link the identity resolver held back for an operator."});
    let merge = object(&[
        ("from_customer", s()),
        ("into_customer", s()),
        ("identity", nullable("string")),
        ("source", nullable("string")),
        ("external_id", nullable("string")),
        ("kind", s()),
        ("merged_at_ms", int()),
    ]);
    let customer = object(&[
        ("customer_id", s()),
        ("display_name", nullable("string")),
        ("identities", array(s())),
        ("interactions", int()),
        (
            "sources",
            json!({"type": "object", "additionalProperties": {"type": "integer"}}),
        ),
        (
            "first_seen",
            json!({"type": ["string", "null"], "format": "date-time"}),
        ),
        (
            "last_seen",
            json!({"type": ["string", "null"], "format": "date-time"}),
        ),
        ("changes", int()),
        ("incidents", int()),
        ("suggestions", array(link_suggestion)),
        ("merges", array(r("Merge"))),
    ]);
    let timeline_interaction = || {
        vec![
            ("id", int()),
            ("source", s()),
            ("kind", s()),
            ("external_id", s()),
            ("occurred_at", time()),
            ("location", nullable("string")),
            ("text", nullable("string")),
            ("language", nullable("string")),
            ("stars", nullable("number")),
            ("nps", nullable("integer")),
            ("csat", nullable("number")),
            ("ces", nullable("number")),
            ("sentiment", nullable("number")),
        ]
    };
    let mut interaction = timeline_interaction();
    interaction.extend([
        ("customer_id", nullable("string")),
        (
            "sentiment_label",
            json!({"type": ["string", "null"], "enum": ["negative", "neutral", "positive", null]}),
        ),
        ("revision", int()),
    ]);
    let timeline = object(&[
        ("customer_id", s()),
        (
            "identities",
            array(object(&[("kind", s()), ("value", s())])),
        ),
        ("interactions", array(object(&timeline_interaction()))),
        (
            "changes",
            array(object(&[
                ("occurred_at", time()),
                ("signal", s()),
                ("status", s()),
                ("direction", s()),
                ("before", num()),
                ("after", num()),
                ("confidence", num()),
                ("evidence", array(int())),
            ])),
        ),
    ]);
    let change = object(&[
        ("id", int()),
        ("series", s()),
        (
            "entity",
            json!({"type": "string", "enum": ["location", "customer"]}),
        ),
        ("entity_id", s()),
        ("channel", nullable("string")),
        ("signal", s()),
        ("index", int()),
        ("occurred_at_ms", int()),
        ("occurred_at", time()),
        (
            "direction",
            json!({"type": "string", "enum": ["up", "down", "change"]}),
        ),
        ("before", num()),
        ("after", num()),
        ("confidence", num()),
        (
            "status",
            json!({"type": "string", "enum": ["watch", "confirmed", "incident"]}),
        ),
        ("n_before", int()),
        ("n_after", int()),
        (
            "evidence",
            json!({"type": "object", "description": "`interactions`: the items that moved the change, strongest first; `terms`: topics and words whose share rose."}),
        ),
        ("detected_at_ms", int()),
        ("detected_at", time()),
    ]);
    let location = object(&[
        ("location_id", nullable("string")),
        ("name", s()),
        ("configured", json!({"type": "boolean"})),
        ("interactions", int()),
        ("reviews", int()),
        ("tickets", int()),
        ("survey_responses", int()),
        ("customers", int()),
        ("stars", r("Figure")),
        ("nps", r("Figure")),
        ("csat_pct", r("Figure")),
        ("ces_agree_pct", r("Figure")),
        ("sentiment_mean", r("Figure")),
        ("negative_pct", r("Figure")),
        ("review_response_rate", r("Figure")),
        (
            "first_at",
            json!({"type": ["string", "null"], "format": "date-time"}),
        ),
        (
            "last_at",
            json!({"type": ["string", "null"], "format": "date-time"}),
        ),
        (
            "languages",
            json!({"type": "array", "items": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}}),
        ),
    ]);
    let run = object(&[
        ("id", int()),
        (
            "status",
            json!({"type": "string", "enum": ["running", "done", "stopped", "failed"]}),
        ),
        ("started_at_ms", int()),
        ("finished_at_ms", nullable("integer")),
        ("read", int()),
        ("inserted", int()),
        ("updated", int()),
        ("quarantined", int()),
        ("error", nullable("string")),
    ]);
    let health = object(&[
        (
            "state",
            json!({"type": "string", "enum": ["ok", "never_run", "running", "failed", "failing", "quiet", "stale"]}),
        ),
        (
            "problems",
            json!({"type": "array", "items": {"type": "string"}, "description": "One sentence per problem, with what to check."}),
        ),
        ("fetched_24h", int()),
        ("fetched_prev_24h", int()),
        ("new_24h", int()),
        ("runs_24h", int()),
        ("consecutive_failures", int()),
        ("last_error", nullable("string")),
    ]);
    let source = object(&[
        ("source", s()),
        (
            "kind",
            json!({"type": "string", "description": "The connector kind, or `import` for file imports."}),
        ),
        ("schedule", nullable("string")),
        ("interactions", int()),
        ("runs", int()),
        ("failed_runs", int()),
        (
            "last_run",
            json!({"oneOf": [r("RunSummary"), {"type": "null"}]}),
        ),
        ("last_success_ms", nullable("integer")),
        ("cursor_updated_ms", nullable("integer")),
        ("quarantine_open", int()),
        ("health", r("SourceHealth")),
    ]);
    let quarantined = object(&[
        ("id", int()),
        (
            "status",
            json!({"type": "string", "enum": ["open", "replayed", "dismissed"]}),
        ),
        ("created_at_ms", int()),
        ("source", s()),
        ("preset", s()),
        (
            "options",
            json!({"description": "How the row was imported, for replay."}),
        ),
        ("origin", s()),
        ("line", nullable("integer")),
        ("field", nullable("string")),
        ("expected", s()),
        ("message", s()),
        ("raw", s()),
    ]);
    let crm_parked = object(&[
        ("id", int()),
        ("sink", s()),
        ("entity", s()),
        ("entity_key", s()),
        ("op", s()),
        ("attempts", int()),
        ("last_error", nullable("string")),
        ("parked_at_ms", int()),
    ]);
    let crm_sink = object(&[
        ("sink", s()),
        ("kind", s()),
        ("registered_at_ms", int()),
        ("pending", int()),
        ("due", int()),
        ("parked", int()),
        ("links", int()),
        ("delivered", int()),
        ("skipped", int()),
        ("oldest_pending_ms", nullable("integer")),
        ("next_attempt_ms", nullable("integer")),
        ("last_run_ms", nullable("integer")),
        ("last_error", nullable("string")),
        (
            "parked_items",
            json!({"type": "array", "items": r("CrmParked")}),
        ),
    ]);
    json!({
        "CrmParked": crm_parked,
        "CrmSink": crm_sink,
        "CrmSinkList": list("CrmSink"),
        "Error": error,
        "Health": object(&[("status", json!({"type": "string", "enum": ["ok", "ready"]}))]),
        "PrometheusText": {"type": "string", "description": "Prometheus text exposition format 0.0.4."},
        "OpenApiDocument": {"type": "object", "description": "An OpenAPI 3.1 document."},
        "CustomerSummary": customer_summary,
        "CustomerPage": page("CustomerSummary"),
        "Merge": merge,
        "Customer": customer,
        "Timeline": timeline,
        "Interaction": object(&interaction),
        "InteractionPage": page("Interaction"),
        "Change": change,
        "ChangePage": page("Change"),
        "Figure": figure(),
        "LocationFigures": location,
        "LocationList": list("LocationFigures"),
        "RunSummary": run,
        "SourceHealth": health,
        "SourceStatus": source,
        "SourceList": list("SourceStatus"),
        "QuarantineItem": quarantined,
        "QuarantinePage": page("QuarantineItem"),
        "QuarantineStatus": object(&[("id", int()), ("status", s())]),
    })
}

fn param_schema(kind: ParamType) -> Value {
    match kind {
        ParamType::Integer => json!({"type": "integer", "minimum": 1}),
        ParamType::Number => json!({"type": "number", "minimum": -1, "maximum": 1}),
        ParamType::String => json!({"type": "string", "minLength": 1, "maxLength": 500}),
        ParamType::Time => json!({"type": "string", "description": "RFC 3339 or YYYY-MM-DD"}),
        ParamType::Enum(values) => json!({"type": "string", "enum": values}),
    }
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {JSON: {"schema": r("Error")}}})
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let parameters: Vec<Value> = route
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "in": if p.location == ParamIn::Path { "path" } else { "query" },
                    "required": p.required,
                    "description": p.description,
                    "schema": param_schema(p.kind),
                })
            })
            .collect();
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json!({
                "description": "Success.",
                "content": {route.content_type.split(';').next().unwrap_or(JSON): {"schema": r(route.response)}},
            }),
        );
        if !route.params.is_empty() || route.scope.is_some() {
            responses.insert(
                "400".into(),
                error_response(
                    "A parameter is not in the expected form, or is unknown (code `bad_request`).",
                ),
            );
        }
        if route.scope.is_some() {
            responses.insert(
                "401".into(),
                error_response("No bearer token, or not a configured one (code `unauthorized`)."),
            );
            responses.insert(
                "403".into(),
                error_response("The token's scope is too low for this route (code `forbidden`)."),
            );
        }
        if route.params.iter().any(|p| p.location == ParamIn::Path)
            || route.operation_id == "lookupCustomer"
        {
            responses.insert(
                "404".into(),
                error_response("Not found (code `not_found`)."),
            );
        }
        if route.operation_id != "healthz" {
            responses.insert(
                "500".into(),
                error_response(
                    "The store failed; the daemon's log has the cause (code `internal`).",
                ),
            );
        }
        if matches!(route.operation_id, "readyz" | "metrics") {
            responses.insert(
                "503".into(),
                error_response("The store does not answer or the daemon is shutting down (code `unavailable`)."),
            );
        }
        let mut op = json!({
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": parameters,
            "responses": responses,
        });
        if route.scope.is_none() {
            op["security"] = json!([]);
        } else {
            op["x-required-scope"] = json!(route.scope.map(|s| s.as_str()));
        }
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[match route.method {
            Method::Get => Method::Get.as_str(),
            Method::Post => Method::Post.as_str(),
        }] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tideline API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Read customers, timelines, interactions, change points, indicators, sources and the quarantine of a Tideline daemon. Every route but /healthz and /readyz needs `Authorization: Bearer <token>`; a token has the scope `read` or `admin` (admin includes read). Lists are paged with `limit` and the opaque `next_cursor`. Errors are `{\"error\": {\"code\", \"message\"}}` with a stable code.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [
            {"name": "customers"}, {"name": "interactions"}, {"name": "changes"},
            {"name": "indicators"}, {"name": "quarantine"}, {"name": "operations"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from [[http.token]] in the daemon's configuration."},
            },
            "schemas": schemas(),
        },
    })
}
