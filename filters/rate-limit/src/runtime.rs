//! The validated, immutable configuration the filter runs with, as [`config`](crate::config)
//! builds it: buckets with their shared-data keys, descriptors, and the local reply.

use crate::bucket::Bucket;
use sdk_ext::proto::{AppendAction, Sampling};
use sdk_ext::ratelimit::Policy;

/// A bucket and the shared-data key that holds its state.
#[derive(Debug, Clone)]
pub struct Limit {
    /// The bucket's settings.
    pub bucket: Bucket,
    /// Its shared-data key.
    pub key: String,
}

/// A descriptor whose entries all have values: one bucket.
#[derive(Debug, Clone)]
pub struct StaticDescriptor {
    /// `(key, value)` pairs a request descriptor must equal.
    pub entries: Vec<(String, String)>,
    /// Its bucket.
    pub limit: Limit,
}

/// A descriptor with at least one empty value: a bucket per distinct request descriptor, in a
/// fixed table of shared-data keys.
#[derive(Debug, Clone)]
pub struct WildcardDescriptor {
    /// `(key, value)` pairs; `None` matches any value.
    pub entries: Vec<(String, Option<String>)>,
    /// The settings of each bucket.
    pub bucket: Bucket,
    /// The table: `sets` shared-data keys `<table_key>/<set>`, each holding `ways` buckets.
    pub table_key: String,
    /// Number of shared-data keys in the table.
    pub sets: u32,
    /// Buckets per key.
    pub ways: u32,
    /// The bucket that request descriptors share while their set is full.
    pub overflow: Limit,
}

/// A header to add, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderAddition {
    /// Lower-case name.
    pub name: String,
    /// Literal value.
    pub value: Vec<u8>,
    /// What to do when the header exists.
    pub action: AppendAction,
}

/// The validated, immutable configuration the filter runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `<stat_prefix>.http_local_rate_limit`: the prefix of every stat.
    pub stats_prefix: String,
    /// Status of the local reply.
    pub status: u32,
    /// Share of requests checked.
    pub enabled: Sampling,
    /// Share of checked requests enforced.
    pub enforced: Sampling,
    /// The default bucket.
    pub default_limit: Option<Limit>,
    /// Descriptors with fixed values.
    pub descriptors: Vec<StaticDescriptor>,
    /// Descriptors with wildcard values.
    pub wildcards: Vec<WildcardDescriptor>,
    /// Descriptor sources.
    pub policies: Vec<Policy>,
    /// Whether to add the `x-ratelimit-*` headers.
    pub x_ratelimit_headers: bool,
    /// Whether matched requests also take from the default bucket.
    pub always_consume_default: bool,
    /// Headers of the local reply, before `retry-after`.
    pub reply_headers: Vec<(String, Vec<u8>)>,
    /// Body of the local reply.
    pub reply_body: Vec<u8>,
    /// Added to limited requests that are not enforced.
    pub request_headers_when_not_enforced: Vec<HeaderAddition>,
    /// Warnings worth a log line at configuration time (settings that make the filter inert).
    pub warnings: Vec<String>,
}

impl Config {
    /// Every shared-data key this configuration uses, with the bytes of a fresh value: a full
    /// bucket (8 zero bytes) or an empty wildcard set. The filter creates them when configured.
    pub fn shared_keys(&self) -> impl Iterator<Item = (String, usize)> + '_ {
        let statics = self
            .default_limit
            .iter()
            .chain(self.descriptors.iter().map(|d| &d.limit))
            .chain(self.wildcards.iter().map(|w| &w.overflow))
            .map(|limit| (limit.key.clone(), crate::store::BUCKET_BYTES));
        let sets = self.wildcards.iter().flat_map(|w| {
            (0..w.sets).map(move |set| {
                (
                    crate::store::set_key(&w.table_key, set),
                    w.ways as usize * crate::store::ENTRY_BYTES,
                )
            })
        });
        statics.chain(sets)
    }
}
