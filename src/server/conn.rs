//! hyper answers some requests itself, before the router sees them: a request line or
//! header it cannot parse (400), a request target over 64 KiB (414), a head larger than
//! its read buffer or with too many header fields (431). Those replies have an empty
//! body. [`JsonErrorReplies`] wraps a connection's byte stream and swaps such a reply,
//! as hyper writes it, for the JSON error every other reply uses.
//!
//! It recognises them safely: hyper writes them only when it has no response of ours in
//! progress (`Writing::Init`), as a bare head with `content-length: 0`, and then closes
//! the connection; every error reply of ours has a JSON body, so none of ours looks so.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::error::ErrorBody;
use crate::ErrorCode;

/// A connection whose hyper-made error replies are rewritten as JSON (see the module).
pub(super) struct JsonErrorReplies<S> {
    inner: S,
    /// A replacement being written: its bytes, how many are written, and how many bytes
    /// of hyper's reply to report as written once it is done.
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<S> JsonErrorReplies<S> {
    /// Wraps `inner`.
    pub(super) fn new(inner: S) -> Self {
        JsonErrorReplies {
            inner,
            replacing: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrorReplies<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrorReplies<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            match json_reply(buf) {
                Some(reply) => this.replacing = Some((reply, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        let (reply, written, claimed) = this.replacing.as_mut().expect("set above");
        while *written < reply.len() {
            match ready!(Pin::new(&mut this.inner).poll_write(cx, &reply[*written..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => *written += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let claimed = *claimed;
        this.replacing = None;
        Poll::Ready(Ok(claimed))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// Not vectored, so hyper writes each reply's head as one contiguous buffer.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// If `buf` is exactly one of hyper's own bodiless error replies, the same reply with a
/// JSON body; otherwise `None`.
fn json_reply(buf: &[u8]) -> Option<Vec<u8>> {
    let head = buf.strip_suffix(b"\r\n\r\n")?;
    if head.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.strip_prefix("HTTP/1.")?.get(2..5)?;
    let (code, message) = match status {
        "400" => (
            ErrorCode::BadRequest,
            "the request is not valid HTTP/1.1 (request line or header fields); see /api/openapi.json"
                .to_string(),
        ),
        "414" => (
            ErrorCode::UriTooLong,
            format!(
                "the request target is too long; the limit is {} bytes: send long text in a POST body (POST /api/search, POST /api/ask)",
                super::MAX_URI_BYTES
            ),
        ),
        "431" => (
            ErrorCode::HeadersTooLarge,
            format!(
                "the request head is too large: header fields over {} bytes, or more than {} of them",
                super::MAX_HEADER_BYTES,
                super::MAX_HEADERS
            ),
        ),
        _ => return None,
    };
    let headers: Vec<&str> = lines.collect();
    if !headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("content-length: 0"))
    {
        return None;
    }
    tracing::debug!(status, "hyper refused a request head; replying with JSON");
    let body = serde_json::to_vec(&ErrorBody {
        error: message,
        code,
    })
    .expect("an error body serializes");
    let mut reply = Vec::with_capacity(head.len() + body.len() + 64);
    reply.extend_from_slice(status_line.as_bytes());
    reply.extend_from_slice(b"\r\n");
    for header in headers {
        if !header.eq_ignore_ascii_case("content-length: 0") {
            reply.extend_from_slice(header.as_bytes());
            reply.extend_from_slice(b"\r\n");
        }
    }
    reply.extend_from_slice(b"content-type: application/json\r\n");
    reply.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    reply.extend_from_slice(&body);
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bodiless_error_replies_become_json_and_nothing_else_changes() {
        let reply = json_reply(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 00:14:05 GMT\r\n\r\n",
        )
        .unwrap();
        let reply = String::from_utf8(reply).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("connection: close\r\n") && head.contains("date: Mon"));
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(!head.contains("content-length: 0"));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "headers_too_large");

        let reply = json_reply(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").unwrap();
        assert!(
            String::from_utf8(reply)
                .unwrap()
                .contains(r#""code":"bad_request""#)
        );

        for ours in [
            // Our own replies: a JSON body, a HEAD reply (length but no body), a 200.
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 85\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            // Two heads in one buffer are not one of hyper's lone replies.
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\nHTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
        ] {
            assert_eq!(json_reply(ours), None, "{}", String::from_utf8_lossy(ours));
        }
    }
}
