//! Generic request and response body buffering with a size limit.
//!
//! A filter that needs the whole body (to rewrite or inspect it) keeps one [`BodyBuffer`] per
//! direction and hands it every body callback: it answers [`Buffered::More`] (return
//! [`Action::Pause`](crate::Action::Pause): the host keeps buffering and the next callback sees
//! the grown buffer) until the end of stream, then [`Buffered::Complete`] with the whole body,
//! or [`Buffered::OverLimit`] as soon as the buffered size passes the limit. After either,
//! it answers [`Buffered::Passing`]: later callbacks (a chain replays the body once more
//! before trailers) are let through.
//!
//! ```ignore
//! fn on_response_body(&mut self, cx: &mut HttpCx<'_>, size: usize, end: bool) -> Action {
//!     match self.body.on_body(cx, size, end) {
//!         Ok(Buffered::More) => Action::Pause,
//!         Ok(Buffered::Complete(body)) => {
//!             let _ = self.body.replace(cx, &rewrite(&body));
//!             Action::Continue
//!         }
//!         Ok(Buffered::OverLimit(_) | Buffered::Passing) | Err(_) => Action::Continue,
//!     }
//! }
//! ```
//!
//! The limit must not exceed Envoy's own buffer limit for the stream
//! (`per_connection_buffer_limit_bytes`, 1 MiB by default): past that, Envoy answers a paused
//! request with its own 413 (a response with a 500 or a reset) before the filter sees the body.

use crate::cx::HttpCx;
use crate::types::{Status, StreamType};

/// What a body callback found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Buffered {
    /// The body continues: return `Pause` so the host buffers it.
    More,
    /// The end of stream: the whole body (empty for an empty body). Return `Continue`, after
    /// [`BodyBuffer::replace`] if the filter rewrites it.
    Complete(Vec<u8>),
    /// The buffered body (this many bytes) passed the limit; nothing was read. The buffer
    /// passes every later callback.
    OverLimit(usize),
    /// Not buffering (the body was complete or over the limit already): return `Continue`.
    Passing,
}

/// One direction's body, buffered up to a limit across body callbacks.
#[derive(Debug, Clone)]
pub struct BodyBuffer {
    direction: StreamType,
    limit: usize,
    buffering: bool,
    /// Size of the buffered body at the end of stream: what [`replace`](Self::replace) replaces.
    size: usize,
}

impl BodyBuffer {
    /// A buffer for `direction`'s body that holds at most `limit` bytes.
    pub fn new(direction: StreamType, limit: usize) -> BodyBuffer {
        BodyBuffer {
            direction,
            limit,
            buffering: true,
            size: 0,
        }
    }

    /// Whether it still waits for the end of the body.
    pub fn is_buffering(&self) -> bool {
        self.buffering
    }

    /// Hands over one body callback: the buffered body is `size` bytes, `end_of_stream` when it
    /// is complete. A failure to read the body ends the buffering too (the caller decides
    /// whether to pass or refuse).
    pub fn on_body(
        &mut self,
        cx: &HttpCx<'_>,
        size: usize,
        end_of_stream: bool,
    ) -> Result<Buffered, Status> {
        if !self.buffering {
            return Ok(Buffered::Passing);
        }
        if size > self.limit {
            self.buffering = false;
            return Ok(Buffered::OverLimit(size));
        }
        if !end_of_stream {
            return Ok(Buffered::More);
        }
        self.buffering = false;
        if size == 0 {
            self.size = 0;
            return Ok(Buffered::Complete(Vec::new()));
        }
        // The whole buffer up to one byte past the limit, not `size` bytes: in a chain, a
        // filter before this one may have replaced the body since `size` was measured.
        let max = self.limit.saturating_add(1);
        let body = match self.direction {
            StreamType::Request => cx.request_body(0, max),
            StreamType::Response => cx.response_body(0, max),
        }?;
        if body.len() > self.limit {
            return Ok(Buffered::OverLimit(body.len()));
        }
        self.size = body.len();
        Ok(Buffered::Complete(body))
    }

    /// Replaces the whole body handed out by [`Buffered::Complete`] with `data`.
    pub fn replace(&self, cx: &HttpCx<'_>, data: &[u8]) -> Result<(), Status> {
        replace_body(cx, self.direction, self.size, data)
    }
}

/// Replaces the first `size` bytes of `direction`'s buffered body with `data` (`size` = the
/// whole buffered body: the body becomes `data`).
pub fn replace_body(
    cx: &HttpCx<'_>,
    direction: StreamType,
    size: usize,
    data: &[u8],
) -> Result<(), Status> {
    match direction {
        StreamType::Request => cx.set_request_body(0, size, data),
        StreamType::Response => cx.set_response_body(0, size, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;
    use crate::fake::FakeModule;
    use crate::{Action, HttpFilter, RootCx, RootFilter};
    use std::cell::RefCell;
    use std::rc::Rc;

    thread_local! {
        /// What the test filter saw: each outcome, and the body after its replacement.
        static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    fn seen() -> Vec<String> {
        SEEN.with(|seen| std::mem::take(&mut *seen.borrow_mut()))
    }

    /// Buffers request bodies up to the limit in its config and upper-cases them.
    struct Upper(usize);
    struct UpperHttp(BodyBuffer);

    impl RootFilter for Upper {
        const NAME: &'static str = "upper";
        type Http = UpperHttp;
        fn configure(_cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
            let limit = std::str::from_utf8(config)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| ConfigError::new("", "a number"))?;
            Ok(Upper(limit))
        }
        fn create_http(root: &Rc<Self>) -> UpperHttp {
            UpperHttp(BodyBuffer::new(StreamType::Request, root.0))
        }
    }

    impl HttpFilter for UpperHttp {
        fn on_request_body(&mut self, cx: &mut HttpCx<'_>, size: usize, end: bool) -> Action {
            let outcome = self.0.on_body(cx, size, end);
            let (record, action) = match outcome {
                Ok(Buffered::More) => ("more".to_string(), Action::Pause),
                Ok(Buffered::Complete(body)) => {
                    let upper = body.to_ascii_uppercase();
                    let replaced = self.0.replace(cx, &upper);
                    let after = cx.request_body(0, usize::MAX).unwrap_or_default();
                    let text = String::from_utf8_lossy(&after).into_owned();
                    (format!("complete {replaced:?} {text}"), Action::Continue)
                }
                Ok(Buffered::OverLimit(size)) => (format!("over {size}"), Action::Continue),
                Ok(Buffered::Passing) => ("passing".to_string(), Action::Continue),
                Err(status) => (format!("error {status:?}"), Action::Continue),
            };
            SEEN.with(|seen| seen.borrow_mut().push(record));
            action
        }
    }

    fn module(limit: usize) -> FakeModule {
        FakeModule::standalone::<Upper>(limit.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_body_in_many_chunks_is_buffered_then_replaced_whole() {
        let mut module = module(100);
        let stream = module.stream();
        module.request_headers(stream, &[(":path", "/")], false);
        assert_eq!(module.request_body(stream, b"ab", false), Action::Pause);
        assert_eq!(module.request_body(stream, b"cd", false), Action::Pause);
        assert_eq!(module.request_body(stream, b"e", true), Action::Continue);
        assert_eq!(seen(), ["more", "more", "complete Ok(()) ABCDE"]);
    }

    #[test]
    fn an_empty_body_is_complete_without_reading_it() {
        let mut module = module(100);
        let stream = module.stream();
        module.request_headers(stream, &[(":path", "/")], false);
        module.host().fail("get_buffer_bytes");
        assert_eq!(module.request_body(stream, b"", true), Action::Continue);
        module.host().recover("get_buffer_bytes");
        // Complete, not an error: the failing read was never made.
        assert_eq!(seen(), ["complete Ok(()) "]);
    }

    #[test]
    fn the_limit_is_inclusive_and_passing_it_stops_buffering_for_good() {
        let mut module = module(4);
        let stream = module.stream();
        module.request_headers(stream, &[(":path", "/")], false);
        assert_eq!(module.request_body(stream, b"abcd", true), Action::Continue);
        assert_eq!(seen(), ["complete Ok(()) ABCD"]);

        let stream = module.stream();
        module.request_headers(stream, &[(":path", "/")], false);
        assert_eq!(module.request_body(stream, b"abc", false), Action::Pause);
        assert_eq!(module.request_body(stream, b"de", false), Action::Continue);
        assert_eq!(module.request_body(stream, b"f", true), Action::Continue);
        assert_eq!(seen(), ["more", "over 5", "passing"]);
    }

    #[test]
    fn trailers_end_a_buffered_body() {
        let mut module = module(100);
        let stream = module.stream();
        module.request_headers(stream, &[(":path", "/")], false);
        assert_eq!(module.request_body(stream, b"xy", false), Action::Pause);
        module.request_trailers(stream, &[("grpc-status", "0")]);
        assert_eq!(seen(), ["more", "complete Ok(()) XY"]);
    }

    /// Appends `!!` to the complete request body.
    struct Grow;
    struct GrowHttp;

    impl RootFilter for Grow {
        const NAME: &'static str = "grow";
        type Http = GrowHttp;
        fn configure(_cx: &mut RootCx<'_>, _config: &[u8]) -> Result<Self, ConfigError> {
            Ok(Grow)
        }
        fn create_http(_root: &Rc<Self>) -> GrowHttp {
            GrowHttp
        }
    }

    impl HttpFilter for GrowHttp {
        fn on_request_body(&mut self, cx: &mut HttpCx<'_>, size: usize, end: bool) -> Action {
            if end {
                cx.set_request_body(size, 0, b"!!").unwrap();
            }
            Action::Continue
        }
    }

    #[test]
    fn in_a_chain_it_reads_the_body_an_earlier_filter_grew() {
        use crate::dispatch::Module;
        use crate::filter::Factory;
        static CHAIN: &[Factory] = &[Factory::of::<Grow>(), Factory::of::<Upper>()];
        let config =
            br#"{"filters": [{"name": "grow", "config": {}}, {"name": "upper", "config": 4}]}"#;
        let mut module = FakeModule::new(Module::Chain(CHAIN), config);
        assert!(module.configured());
        let stream = module.stream();
        module.request_headers(stream, &[(":path", "/")], false);
        assert_eq!(module.request_body(stream, b"ab", true), Action::Continue);
        assert_eq!(module.request_body(stream, b"", true), Action::Continue);
        // "ab!!" is within the limit of 4 and replaced whole; a second "!!" makes it too long.
        assert_eq!(seen(), ["complete Ok(()) AB!!", "passing"]);
        let stream = module.stream();
        module.request_headers(stream, &[(":path", "/")], false);
        assert_eq!(module.request_body(stream, b"abc", true), Action::Continue);
        assert_eq!(seen(), ["over 5"]);
    }

    #[test]
    fn a_body_the_host_cannot_read_is_an_error_not_a_trap() {
        let mut module = module(100);
        let stream = module.stream();
        module.request_headers(stream, &[(":path", "/")], false);
        module.host().fail("get_buffer_bytes");
        assert_eq!(module.request_body(stream, b"abc", true), Action::Continue);
        module.host().recover("get_buffer_bytes");
        assert_eq!(seen(), ["error InternalFailure"]);
    }
}
