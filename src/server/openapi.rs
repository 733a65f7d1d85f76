//! The OpenAPI document served at `/api/openapi.json`, generated from the handlers'
//! `#[utoipa::path]` attributes and the request and response types (utoipa), so it
//! cannot drift from them. This module holds what the derives cannot say by
//! themselves: the schemas of the checked request fields (built from the same
//! constants the engine checks against), the texts of the error replies, the replies
//! every operation can get, and the report names, which only the running server knows.

use utoipa::openapi::RefOr;
use utoipa::openapi::Required;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Ref, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use super::error::ErrorBody;
use crate::analysis::SEARCHABLE_PATTERN;
use crate::answer::DEFAULT_ANSWER_PASSAGES;
use crate::corpus::{MAX_SPAN_CHARS, SPAN_CONTEXT_CHARS};
use crate::retrieve::{DEFAULT_K, MAX_K, MAX_QUERY_CHARS, Mode};

/// The base document: title, description and the schemas the paths refer to by name.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "wenda API",
        description = "Retrieval and cited answers over Chinese industry reports on large AI models. Every error reply is a JSON object {\"error\": sentence, \"code\": machine-readable reason}."
    ),
    components(schemas(Mode, ErrorBody, ReportName, ReportFilter))
)]
pub(super) struct ApiDoc;

/// Description of both search operations.
pub(super) const SEARCH_DESCRIPTION: &str = "Passages of the reports ranked by BM25 over jieba words (bm25), embedding similarity (dense) or both fused (hybrid, the default where the embedding model is loaded). A result's `text` is the cleaned passage (PDF line wraps joined, page headers, page numbers and U+FFFD left out); `citation.char_start..citation.char_end` is the exact cited slice of the file `citation.source`, which GET /api/documents/{source}?start=&end= returns.";

/// Description of the ask operation.
pub(super) const ASK_DESCRIPTION: &str = "The answer's sentences are each followed by markers like [1] that name its sources. Below a confidence of 0.5 the reply says the reports do not answer the question (found: false) and lists the closest passages as suggestions. Each source's `text` is the cleaned passage; `citation.char_start..citation.char_end` is the exact cited slice of the file.";

/// 400 of `GET /api/search`.
pub(super) const BAD_QUERY_STRING: &str = "Bad input. Codes: empty_query (no q, or only spaces), query_too_long, no_searchable_text (no letter, digit or Chinese character), bad_k (k outside 1..100), unknown_mode, mode_unavailable (dense or hybrid on a server running without the embedding model), unknown_source, invalid_parameters (a parameter that does not parse, such as k=abc, or text that is not UTF-8).";

/// 400 of the operations that take a JSON body.
pub(super) const BAD_BODY: &str = "Bad input. Codes: malformed_json (the body is not JSON), empty_query (no query or question, or only spaces), query_too_long, no_searchable_text (no letter, digit or Chinese character), bad_k (k outside 1..100), unknown_mode, mode_unavailable (dense or hybrid on a server running without the embedding model), unknown_source.";

/// 400 of `GET /api/documents/{source}`.
pub(super) const BAD_SPAN: &str = "Bad span (code bad_span): start > end, end past the report's length, or more than 20000 characters asked for; or a parameter or report name that does not parse (code invalid_parameters).";

/// 413 of the operations that take a JSON body.
pub(super) const BODY_TOO_LARGE: &str = "Body over 64 KiB (code body_too_large).";

/// 415 of the operations that take a JSON body.
pub(super) const NOT_JSON: &str =
    "Body not sent as JSON: Content-Type must be application/json (code unsupported_media_type).";

/// 422 of the operations that take a JSON body.
pub(super) const WRONG_FIELDS: &str = "JSON of the wrong shape: not an object, or a field of the wrong type, e.g. \"k\": \"five\" (code invalid_body).";

/// 500 of the operations that run the engine.
pub(super) const INTERNAL: &str = "A fault of the service (code internal); the message carries an incident id found in the server log.";

/// 503 of the operations that run the engine.
pub(super) const UNAVAILABLE: &str = "Retry later. Codes: overloaded (the server is at capacity; the Retry-After header says how many seconds to wait), index_unusable (the index is missing, stale or damaged), timeout (the request took longer than 30 s).";

/// Replies any operation can get, from the server's limits rather than the handler:
/// added to every operation that does not document the status itself.
fn common_replies() -> [(&'static str, String); 4] {
    [
        (
            "405",
            "This path does not take that method (code method_not_allowed); the Allow header lists those it takes.".to_string(),
        ),
        (
            "414",
            format!(
                "The request target (path and query string) is longer than {} bytes (code uri_too_long); send long text in a POST body.",
                super::MAX_URI_BYTES
            ),
        ),
        (
            "431",
            format!(
                "The header fields take more than {} bytes, or there are more than {} of them (code headers_too_large).",
                super::MAX_HEADER_BYTES,
                super::MAX_HEADERS
            ),
        ),
        (
            "503",
            format!(
                "The request took longer than {} s (code timeout); retry later.",
                super::REQUEST_TIMEOUT.as_secs()
            ),
        ),
    ]
}

/// The schema of a query or question: what [`crate::retrieve::Engine::validate`] accepts.
fn text(description: &str, example: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_QUERY_CHARS))
        .pattern(Some(SEARCHABLE_PATTERN))
        .description(Some(format!(
            "{description} It must contain a digit or a letter (Latin, Greek, Cyrillic, Chinese, kana, Hangul, or their full-width forms), not only punctuation, symbols or spaces; at most {MAX_QUERY_CHARS} characters."
        )))
        .examples([serde_json::json!(example)])
        .build()
}

/// The parameters of `GET /api/search` (written here rather than derived: utoipa's
/// derive takes only literals for lengths and patterns, and these come from constants).
pub(super) fn search_query_params() -> Vec<Parameter> {
    let param = |name: &str, required: bool, description: &str, schema: RefOr<Schema>| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .required(if required {
                Required::True
            } else {
                Required::False
            })
            .description(Some(description))
            .schema(Some(schema))
            .build()
    };
    vec![
        param(
            "q",
            true,
            "Question or keywords (`query` is accepted as another name for it; q wins when both are given).",
            text("Question or keywords.", "政务大模型").into(),
        ),
        param(
            "k",
            false,
            "Number of results",
            k(DEFAULT_K, "Number of results", false).into(),
        ),
        param(
            "mode",
            false,
            MODE_DESCRIPTION,
            Ref::from_schema_name(Mode::name()).into(),
        ),
        param(
            "source",
            false,
            "Only passages of this report (a file name from GET /api/documents); empty: all reports.",
            Ref::from_schema_name(ReportFilter::name()).into(),
        ),
    ]
}

/// `query` of `POST /api/search`.
pub(super) fn query_text() -> Object {
    text("Question or keywords.", "政务大模型")
}

/// `question` of `POST /api/ask`.
pub(super) fn question_text() -> Object {
    text(
        "The question, in Chinese or English.",
        "百丽时尚有多少家直营门店？",
    )
}

/// `k`: how many passages, with its default; `nullable` for JSON bodies, where null is
/// the same as leaving the field out.
fn k(default: usize, what: &str, nullable: bool) -> Object {
    let schema_type = if nullable {
        SchemaType::from_iter([Type::Integer, Type::Null])
    } else {
        SchemaType::new(Type::Integer)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .minimum(Some(1))
        .maximum(Some(MAX_K as f64))
        .default(Some(serde_json::json!(default)))
        .description(Some(what))
        .build()
}

/// `k` of `POST /api/search`.
pub(super) fn search_k_or_null() -> Object {
    k(DEFAULT_K, "Number of results (null: the default)", true)
}

/// `k` of `POST /api/ask`.
pub(super) fn ask_k_or_null() -> Object {
    k(
        DEFAULT_ANSWER_PASSAGES,
        "Passages to retrieve and answer from (null: the default)",
        true,
    )
}

const MODE_DESCRIPTION: &str = "Retrieval mode (default: hybrid where the embedding model is loaded, else bm25; GET /healthz lists the modes this server has). Case and surrounding spaces are ignored.";

/// `mode` in a JSON body (null: the default).
pub(super) fn mode_or_null() -> OneOfBuilder {
    OneOfBuilder::new()
        .item(Ref::from_schema_name("Mode"))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(MODE_DESCRIPTION))
}

const FILTER_DESCRIPTION: &str = "Only passages of this report (a file name from GET /api/documents); empty or null: all reports.";

/// `source` filter in a JSON body.
pub(super) fn report_filter_or_null() -> OneOfBuilder {
    OneOfBuilder::new()
        .item(Ref::from_schema_name(ReportFilter::name()))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(FILTER_DESCRIPTION))
}

/// A report's file name (component `ReportName`): [`document`] makes it an enum of the
/// reports this server has.
pub(super) struct ReportName;

impl PartialSchema for ReportName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "File name of a report, as listed by GET /api/documents",
            ))
            .into()
    }
}

impl ToSchema for ReportName {}

/// A report filter (component `ReportFilter`): a report's file name, or empty for all
/// reports; [`document`] makes it an enum.
pub(super) struct ReportFilter;

impl PartialSchema for ReportFilter {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "File name of a report, as listed by GET /api/documents, or empty for all reports",
            ))
            .into()
    }
}

impl ToSchema for ReportFilter {}

/// Completes the document collected from the router's handlers (`api`): the replies
/// every operation can get and the schemas of report names, an enum of `reports` (the
/// file names this server has).
pub(super) fn document(mut api: utoipa::openapi::OpenApi, reports: &[String]) -> String {
    let error_reply = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Error")))
                    .build(),
            )
            .build()
    };
    let common = common_replies();
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, description) in &common {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error_reply(description).into());
            }
        }
    }
    // utoipa fills the license from Cargo.toml, which names none.
    api.info.license = None;
    if let Some(components) = api.components.as_mut() {
        components.add_security_scheme(
            "adminToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The server's WENDA_ADMIN_TOKEN (wenda serve --admin-token); without one, writing is off (403)",
                    ))
                    .build(),
            ),
        );
    }
    let mut spec = serde_json::to_value(&api).expect("an OpenAPI document serializes");
    let schemas = &mut spec["components"]["schemas"];
    schemas[&*ReportName::name()]["enum"] = serde_json::json!(reports);
    let mut filters = vec![""];
    filters.extend(reports.iter().map(String::as_str));
    schemas[&*ReportFilter::name()]["enum"] = serde_json::json!(filters);
    serde_json::to_string_pretty(&spec).expect("JSON serializes")
}

// The texts above quote these limits; a change to one of them must change the texts.
const _: () = assert!(
    SPAN_CONTEXT_CHARS == 200
        && MAX_SPAN_CHARS == 20_000
        && MAX_K == 100
        && super::BODY_LIMIT_BYTES == 64 * 1024
        && super::REQUEST_TIMEOUT.as_secs() == 30
);

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::answer::SUGGESTIONS;

    fn spec() -> Value {
        let (_, api) = super::super::api_routes().split_for_parts();
        let reports = ["a.txt".to_string(), "b.txt".to_string()];
        serde_json::from_str(&document(api, &reports)).unwrap()
    }

    /// The numbers and the pattern the document states come from the engine's constants.
    #[test]
    fn the_document_states_the_engines_limits() {
        let spec = spec();
        let schemas = &spec["components"]["schemas"];
        let params = spec["paths"]["/api/search"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let param = |name: &str| &params.iter().find(|p| p["name"] == name).unwrap()["schema"];
        for text in [
            param("q"),
            &schemas["SearchBody"]["properties"]["query"],
            &schemas["AskBody"]["properties"]["question"],
        ] {
            assert_eq!(text["minLength"], 1);
            assert_eq!(text["maxLength"], MAX_QUERY_CHARS);
            assert_eq!(text["pattern"], SEARCHABLE_PATTERN);
        }
        for (k, default) in [
            (param("k"), DEFAULT_K),
            (&schemas["SearchBody"]["properties"]["k"], DEFAULT_K),
            (
                &schemas["AskBody"]["properties"]["k"],
                DEFAULT_ANSWER_PASSAGES,
            ),
        ] {
            assert_eq!(
                (&k["minimum"], &k["maximum"], &k["default"]),
                (&json!(1), &json!(MAX_K), &json!(default))
            );
        }
        assert_eq!(
            schemas["Answer"]["properties"]["suggestions"]["maxItems"],
            SUGGESTIONS
        );
        assert_eq!(schemas["ReportName"]["enum"], json!(["a.txt", "b.txt"]));
        assert_eq!(
            schemas["ReportFilter"]["enum"],
            json!(["", "a.txt", "b.txt"])
        );
        assert!(spec["info"].get("license").is_none());
    }

    /// Every operation documents the replies of the server's limits, and every `$ref`
    /// names a schema the document has.
    #[test]
    fn every_operation_documents_the_limits_and_every_reference_resolves() {
        let spec = spec();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for status in ["405", "414", "431", "503"] {
                    assert!(
                        operation["responses"][status].is_object(),
                        "{method} {path}: no {status}"
                    );
                }
                // 200, or 202 for the writes that run as jobs.
                assert!(
                    ["200", "202"]
                        .iter()
                        .any(|s| operation["responses"][*s].is_object()),
                    "{method} {path}: no success reply"
                );
            }
        }
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r);
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&spec, &mut all);
        assert!(all.len() > 20);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                spec["components"]["schemas"][name].is_object(),
                "dangling {r}"
            );
        }
    }
}
