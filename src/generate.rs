//! Answers written by a language model from the retrieved passages, through any
//! OpenAI-compatible chat-completions endpoint (`WENDA_LLM_URL`). Optional: without
//! it, and whenever the model fails, times out or cites nothing, answers stay extractive.
//!
//! The model sees the passages numbered `[1]`…`[n]` and is told to answer only from
//! them and to cite the numbers; its markers are then checked and renumbered in order
//! of first use, so that the `sources` of an answer are exactly the ones it cites.

use std::time::Duration;

use serde_json::json;
use thiserror::Error;

/// Model name sent when `WENDA_LLM_MODEL` is unset; servers that host one model
/// (llama.cpp, vLLM with one model) ignore it.
pub const DEFAULT_LLM_MODEL: &str = "default";

/// How long an answer may take to generate before the extractive answer is used
/// instead: a person waiting at the page, and below the server's 30 s request timeout.
pub const LLM_TIMEOUT: Duration = Duration::from_secs(20);

/// Most characters of a generated answer kept: a few paragraphs, so that a runaway
/// generation cannot fill the page.
pub const MAX_GENERATED_CHARS: usize = 2000;

/// Sampling temperature: low, because the answer must stay close to the sources.
pub const LLM_TEMPERATURE: f32 = 0.2;

/// The instruction given with every question.
const SYSTEM_PROMPT: &str = "你是一个严谨的行业研究助理。只根据用户给出的编号资料回答问题，\
不要使用资料以外的知识。每句话后用方括号标注所依据资料的编号，例如 [1] 或 [2]。\
回答简洁，使用与问题相同的语言。如果资料不足以回答，请直接说明资料中没有相关信息。";

/// Why a generated answer could not be used.
#[derive(Debug, Error)]
pub enum GenerateError {
    /// The endpoint could not be reached, refused the request or timed out.
    #[error("language model at {url}: {reason}")]
    Request {
        /// The endpoint.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The reply was not a chat completion with text.
    #[error("language model at {url} sent an unexpected reply: {reason}")]
    Reply {
        /// The endpoint.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// A client for one chat-completions endpoint.
#[derive(Debug, Clone)]
pub struct LlmClient {
    url: String,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
}

impl LlmClient {
    /// A client for `url` asking for `model`, with [`LLM_TIMEOUT`].
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> Self {
        LlmClient {
            url: url.into(),
            model: model.into(),
            api_key: None,
            timeout: LLM_TIMEOUT,
        }
    }

    /// The same client sending `key` as a bearer token.
    pub fn with_api_key(mut self, key: Option<String>) -> Self {
        self.api_key = key.filter(|k| !k.is_empty());
        self
    }

    /// The same client with another time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Asks the model to answer `question` from `passages` (numbered from 1 in this
    /// order) and returns its text, unchecked.
    pub fn complete(&self, question: &str, passages: &[&str]) -> Result<String, GenerateError> {
        let mut context = String::new();
        for (i, p) in passages.iter().enumerate() {
            context.push_str(&format!("[{}] {}\n\n", i + 1, p.trim()));
        }
        let body = json!({
            "model": self.model,
            "temperature": LLM_TEMPERATURE,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": format!("资料：\n{context}问题：{question}")},
            ],
        });
        let request_error = |reason: String| GenerateError::Request {
            url: self.url.clone(),
            reason,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .build()
            .into();
        let mut request = agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let reply = request
            .send(body.to_string())
            .map_err(|e| request_error(e.to_string()))?
            .into_body()
            .read_to_string()
            .map_err(|e| request_error(e.to_string()))?;
        let reply_error = |reason: &str| GenerateError::Reply {
            url: self.url.clone(),
            reason: reason.to_string(),
        };
        let value: serde_json::Value =
            serde_json::from_str(&reply).map_err(|_| reply_error("not JSON"))?;
        let text = value["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| reply_error("no choices[0].message.content"))?;
        Ok(text.trim().chars().take(MAX_GENERATED_CHARS).collect())
    }
}

/// Checks the markers of a generated answer against `n_sources` passages and renumbers
/// them by first use: returns the rewritten text and, for each new marker `i + 1`, the
/// index of its passage. Markers outside `1..=n_sources` are dropped; `None` when no
/// valid marker remains (an answer that cites nothing is not used).
pub fn renumber_citations(text: &str, n_sources: usize) -> Option<(String, Vec<usize>)> {
    let mut order: Vec<usize> = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['[', '［']) {
        out.push_str(&rest[..open]);
        let bracket = rest[open..].chars().next().map_or(1, char::len_utf8);
        let after = &rest[open + bracket..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        let tail = &after[digits.len()..];
        let close = tail.chars().next().filter(|c| *c == ']' || *c == '］');
        match (digits.parse::<usize>(), close) {
            (Ok(n), Some(c)) => {
                if (1..=n_sources).contains(&n) {
                    let index = n - 1;
                    let marker = match order.iter().position(|i| *i == index) {
                        Some(p) => p + 1,
                        None => {
                            order.push(index);
                            order.len()
                        }
                    };
                    out.push_str(&format!("[{marker}]"));
                }
                rest = &tail[c.len_utf8()..];
            }
            _ => {
                out.push_str(&rest[open..open + bracket]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (!order.is_empty()).then_some((out, order))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_renumbered_by_first_use_and_bad_ones_dropped() {
        let (text, order) =
            renumber_citations("银行用于风控[3]。也用于客服［1］[3]。无效[9][x]。", 3).unwrap();
        assert_eq!(text, "银行用于风控[1]。也用于客服[2][1]。无效[x]。");
        assert_eq!(order, vec![2, 0]);
    }

    #[test]
    fn an_answer_without_valid_markers_is_rejected() {
        assert!(renumber_citations("资料中没有相关信息。", 2).is_none());
        assert!(renumber_citations("见[0]与[5]", 2).is_none());
    }

    #[test]
    fn unreachable_endpoint_is_an_error_not_a_hang() {
        // A port nothing listens on: refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = LlmClient::new(format!("http://127.0.0.1:{port}/v1/chat/completions"), "m")
            .with_timeout(Duration::from_secs(2));
        let err = client.complete("问题", &["资料"]).unwrap_err();
        assert!(matches!(err, GenerateError::Request { .. }), "{err}");
        assert!(err.to_string().contains("127.0.0.1"));
    }
}
