//! Shared by the integration tests: starting servers and calling them over real gRPC.
#![allow(dead_code)]

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{
    rate_limit_descriptor::Entry, RateLimitDescriptor,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{Code, DescriptorStatus};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::UInt64Value;
use rate_limit_service::{Limits, Server, Storage};
use std::net::TcpListener;
use tonic::transport::Channel;

pub type Client = RateLimitServiceClient<Channel>;

pub fn start(yaml: &str, storage: Storage) -> Server {
    start_on(TcpListener::bind("127.0.0.1:0").unwrap(), yaml, storage)
}

pub fn start_on(listener: TcpListener, yaml: &str, storage: Storage) -> Server {
    Server::start(listener, Limits::parse(yaml).unwrap(), storage).unwrap()
}

pub async fn client(port: u16) -> Client {
    RateLimitServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
}

pub fn descriptor(entries: &[(&str, &str)]) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: entries
            .iter()
            .map(|(k, v)| Entry {
                key: (*k).into(),
                value: (*v).into(),
            })
            .collect(),
        ..Default::default()
    }
}

pub fn with_hits(mut d: RateLimitDescriptor, hits: u64) -> RateLimitDescriptor {
    d.hits_addend = Some(UInt64Value { value: hits });
    d
}

pub fn request(domain: &str, descriptors: Vec<RateLimitDescriptor>, hits: u32) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.into(),
        descriptors,
        hits_addend: hits,
    }
}

/// One call with one descriptor; panics on a gRPC error.
pub async fn call(
    client: &mut Client,
    domain: &str,
    entries: &[(&str, &str)],
) -> RateLimitResponse {
    client
        .should_rate_limit(request(domain, vec![descriptor(entries)], 0))
        .await
        .unwrap()
        .into_inner()
}

pub fn is_ok(r: &RateLimitResponse) -> bool {
    r.overall_code == Code::Ok as i32
}

pub fn status(r: &RateLimitResponse, i: usize) -> &DescriptorStatus {
    &r.statuses[i]
}

/// `n` concurrent calls for `entries`, spread round-robin over `clients`; the number admitted.
pub async fn burst(clients: &[Client], n: usize, domain: &str, entries: &[(&str, &str)]) -> usize {
    let mut tasks = Vec::new();
    for i in 0..n {
        let mut client = clients[i % clients.len()].clone();
        let req = request(domain, vec![descriptor(entries)], 0);
        tasks.push(tokio::spawn(async move {
            client.should_rate_limit(req).await.unwrap().into_inner()
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        if is_ok(&t.await.unwrap()) {
            admitted += 1;
        }
    }
    admitted
}
