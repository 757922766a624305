//! Per-request logic: apply the configured mutations to each header map as it passes.

use crate::config::{Config, HeaderRewriteConfig, Mutation};
use crate::format::Lookup;
use sdk_ext::config::{load, ConfigError};
use sdk_ext::headers::Headers;
use sdk_ext::host::Status;
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter};
use std::borrow::Cow;
use std::rc::Rc;

sdk_ext::stats! {
    /// The filter's counters, `header_rewrite.<field>`.
    pub struct Stats {
        /// Pseudo-header writes refused because the value is invalid for the header (a `:path`
        /// of `GET /evil` rendered from a request header, a `:status` of 999).
        invalid_pseudo_header: Counter,
    }
}

/// The per-VM root: the validated configuration.
pub struct HeaderRewriteRoot {
    config: Config,
    stats: Stats,
}

impl RootFilter for HeaderRewriteRoot {
    const NAME: &'static str = "header_rewrite";
    type Http = HeaderRewrite;

    fn configure(cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        Ok(HeaderRewriteRoot {
            config: load::<HeaderRewriteConfig>(config)?,
            stats: Stats::define(cx, "header_rewrite"),
        })
    }

    fn create_http(root: &Rc<Self>) -> HeaderRewrite {
        HeaderRewrite {
            root: root.clone(),
            captured: Vec::new(),
        }
    }
}

/// The per-request filter.
pub struct HeaderRewrite {
    root: Rc<HeaderRewriteRoot>,
    /// Values of `config.captured_request_headers`, read at the end of the request headers.
    captured: Vec<Option<Vec<u8>>>,
}

impl HttpFilter for HeaderRewrite {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        let config = &self.root.config;
        let headers = cx.request_headers();
        let refused = apply(&config.request, headers, &mut RequestLookup { cx });
        self.root.stats.invalid_pseudo_header.add(cx, refused);
        self.captured = config
            .captured_request_headers
            .iter()
            .map(|name| headers.get(name).ok().flatten())
            .collect();
        Action::Continue
    }

    fn on_request_trailers(&mut self, cx: &mut HttpCx<'_>) -> Action {
        let refused = apply(
            &self.root.config.request_trailers,
            cx.request_trailers(),
            &mut RequestLookup { cx },
        );
        self.root.stats.invalid_pseudo_header.add(cx, refused);
        Action::Continue
    }

    fn on_response_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        let mut lookup = self.response_lookup(cx);
        let refused = apply(
            &self.root.config.response,
            cx.response_headers(),
            &mut lookup,
        );
        self.root.stats.invalid_pseudo_header.add(cx, refused);
        Action::Continue
    }

    fn on_response_trailers(&mut self, cx: &mut HttpCx<'_>) -> Action {
        let mut lookup = self.response_lookup(cx);
        let refused = apply(
            &self.root.config.response_trailers,
            cx.response_trailers(),
            &mut lookup,
        );
        self.root.stats.invalid_pseudo_header.add(cx, refused);
        Action::Continue
    }
}

impl HeaderRewrite {
    fn response_lookup<'s>(&'s self, cx: &'s HttpCx<'s>) -> ResponseLookup<'s> {
        ResponseLookup {
            cx,
            names: &self.root.config.captured_request_headers,
            values: &self.captured,
        }
    }
}

/// A host value as a template reads it: a failed hostcall reads as a missing value, as in
/// Envoy's formatter.
fn found(value: Result<Option<Vec<u8>>, Status>) -> Option<Cow<'static, [u8]>> {
    value.ok().flatten().map(Cow::Owned)
}

/// Template values while the request is processed: request headers live, no response yet.
struct RequestLookup<'c, 'a> {
    cx: &'c HttpCx<'a>,
}

impl Lookup for RequestLookup<'_, '_> {
    fn request_header(&mut self, name: &str) -> Option<Cow<'_, [u8]>> {
        found(self.cx.request_headers().get(name))
    }
    fn response_header(&mut self, _name: &str) -> Option<Cow<'_, [u8]>> {
        None
    }
    fn property(&mut self, path: &[&str]) -> Option<Cow<'_, [u8]>> {
        found(self.cx.property(path))
    }
}

/// Template values while the response is processed: request headers as captured, because Envoy
/// gives a wasm filter no request headers in the response callbacks.
struct ResponseLookup<'a> {
    cx: &'a HttpCx<'a>,
    names: &'a [String],
    values: &'a [Option<Vec<u8>>],
}

impl Lookup for ResponseLookup<'_> {
    fn request_header(&mut self, name: &str) -> Option<Cow<'_, [u8]>> {
        let index = self.names.iter().position(|known| known == name)?;
        self.values.get(index)?.as_deref().map(Cow::Borrowed)
    }
    fn response_header(&mut self, name: &str) -> Option<Cow<'_, [u8]>> {
        found(self.cx.response_headers().get(name))
    }
    fn property(&mut self, path: &[&str]) -> Option<Cow<'_, [u8]>> {
        found(self.cx.property(path))
    }
}

/// Applies `mutations`; returns how many pseudo-header writes were refused for their value.
fn apply(mutations: &[Mutation], map: Headers<'_>, lookup: &mut impl Lookup) -> u64 {
    let mut rendered = Vec::new();
    let mut refused = 0;
    for mutation in mutations {
        if let Err(status) = apply_one(mutation, map, lookup, &mut rendered) {
            let name = mutation_name(mutation);
            if status == Status::BadArgument && name.starts_with(':') {
                refused += 1;
            }
            log::warn!("header_rewrite: could not apply a mutation of {name:?}: {status:?}");
        }
    }
    refused
}

fn apply_one(
    mutation: &Mutation,
    map: Headers<'_>,
    lookup: &mut impl Lookup,
    scratch: &mut Vec<u8>,
) -> Result<(), Status> {
    let (name, template, action, keep_empty_value) = match mutation {
        Mutation::Remove { name } => return map.remove(name),
        Mutation::Append {
            name,
            value,
            action,
            keep_empty_value,
        } => (name, value, *action, *keep_empty_value),
    };
    let value: &[u8] = match template.as_literal() {
        Some(literal) => literal,
        None => {
            template.render(lookup, scratch);
            scratch
        }
    };
    if value.is_empty() && !keep_empty_value {
        return Ok(());
    }
    map.apply(action, name, value)
}

fn mutation_name(mutation: &Mutation) -> &str {
    match mutation {
        Mutation::Append { name, .. } | Mutation::Remove { name } => name,
    }
}
