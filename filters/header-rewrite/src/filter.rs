//! Per-request logic: apply the configured mutations to each header map as it passes.

use crate::config::{Config, HeaderRewriteConfig, Mutation};
use crate::format::Lookup;
use sdk_ext::config::{load, ConfigError};
use sdk_ext::headers::{
    HeaderMap, REQUEST_HEADERS, REQUEST_TRAILERS, RESPONSE_HEADERS, RESPONSE_TRAILERS,
};
use sdk_ext::host::Status;
use sdk_ext::{properties, Action, HttpFilter, RootFilter};
use std::borrow::Cow;
use std::rc::Rc;

/// The per-VM root: the validated configuration.
pub struct HeaderRewriteRoot {
    config: Config,
}

impl RootFilter for HeaderRewriteRoot {
    const NAME: &'static str = "header_rewrite";
    type Http = HeaderRewrite;

    fn configure(config: &[u8]) -> Result<Self, ConfigError> {
        Ok(HeaderRewriteRoot {
            config: load::<HeaderRewriteConfig>(config)?,
        })
    }

    fn create_http(root: &Rc<Self>, _context_id: u32) -> HeaderRewrite {
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
    fn on_request_headers(&mut self, _end_of_stream: bool) -> Action {
        let config = &self.root.config;
        apply(&config.request, REQUEST_HEADERS, &mut RequestLookup);
        self.captured = config
            .captured_request_headers
            .iter()
            .map(|name| request_header(name).map(Cow::into_owned))
            .collect();
        Action::Continue
    }

    fn on_request_trailers(&mut self) -> Action {
        apply(
            &self.root.config.request_trailers,
            REQUEST_TRAILERS,
            &mut RequestLookup,
        );
        Action::Continue
    }

    fn on_response_headers(&mut self, _end_of_stream: bool) -> Action {
        let mut lookup = self.response_lookup();
        apply(&self.root.config.response, RESPONSE_HEADERS, &mut lookup);
        Action::Continue
    }

    fn on_response_trailers(&mut self) -> Action {
        let mut lookup = self.response_lookup();
        apply(
            &self.root.config.response_trailers,
            RESPONSE_TRAILERS,
            &mut lookup,
        );
        Action::Continue
    }
}

impl HeaderRewrite {
    fn response_lookup(&self) -> ResponseLookup<'_> {
        ResponseLookup {
            names: &self.root.config.captured_request_headers,
            values: &self.captured,
        }
    }
}

fn property(path: &[&str]) -> Option<Cow<'static, [u8]>> {
    properties::get(path).ok().flatten().map(Cow::Owned)
}

fn request_header(name: &str) -> Option<Cow<'static, [u8]>> {
    REQUEST_HEADERS.get(name).ok().flatten().map(Cow::Owned)
}

/// Template values while the request is processed: request headers live, no response yet.
/// A failed hostcall reads as a missing value, as in Envoy's formatter.
struct RequestLookup;

impl Lookup for RequestLookup {
    fn request_header(&mut self, name: &str) -> Option<Cow<'_, [u8]>> {
        request_header(name)
    }
    fn response_header(&mut self, _name: &str) -> Option<Cow<'_, [u8]>> {
        None
    }
    fn property(&mut self, path: &[&str]) -> Option<Cow<'_, [u8]>> {
        property(path)
    }
}

/// Template values while the response is processed: request headers as captured.
struct ResponseLookup<'a> {
    names: &'a [String],
    values: &'a [Option<Vec<u8>>],
}

impl Lookup for ResponseLookup<'_> {
    fn request_header(&mut self, name: &str) -> Option<Cow<'_, [u8]>> {
        let index = self.names.iter().position(|known| known == name)?;
        self.values.get(index)?.as_deref().map(Cow::Borrowed)
    }
    fn response_header(&mut self, name: &str) -> Option<Cow<'_, [u8]>> {
        RESPONSE_HEADERS.get(name).ok().flatten().map(Cow::Owned)
    }
    fn property(&mut self, path: &[&str]) -> Option<Cow<'_, [u8]>> {
        property(path)
    }
}

fn apply(mutations: &[Mutation], map: HeaderMap, lookup: &mut impl Lookup) {
    let mut rendered = Vec::new();
    for mutation in mutations {
        if let Err(status) = apply_one(mutation, map, lookup, &mut rendered) {
            log::warn!(
                "header_rewrite: could not apply a mutation of {:?}: {status:?}",
                mutation_name(mutation)
            );
        }
    }
}

fn apply_one(
    mutation: &Mutation,
    map: HeaderMap,
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
