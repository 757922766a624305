//! Plays test-host scenario files in real Envoy: the filter in front of a scripted upstream, the
//! same expectations checked on what the upstream and the client really got.

use crate::client::Request;
use crate::config::{filter_wasm, wasm_filter, BootstrapBuilder};
use crate::echo::{CannedReply, EchoUpstream};
use crate::process::Envoy;
use std::io;
use test_host::scenario::{ExchangeReport, Observed, Outcome, Scenario};

/// Plays `scenario` through Envoy and reports each exchange.
pub fn run(scenario: &Scenario) -> io::Result<Vec<ExchangeReport>> {
    let upstream = EchoUpstream::start()?;
    let filter = wasm_filter(
        &scenario.filter,
        &filter_wasm(&scenario.filter),
        &scenario.config,
    );
    let envoy = Envoy::start(
        BootstrapBuilder::new(upstream.port())
            .listener("main", vec![filter])
            .build(),
    )?;
    let mut reports = Vec::new();
    for exchange in &scenario.requests {
        let logs_before = envoy.logs().len();
        // The filter's callouts go to the upstream cluster first, then the request itself.
        for answer in exchange
            .callouts
            .iter()
            .chain([&exchange.upstream_response])
        {
            upstream.reply_next(CannedReply {
                status: answer.status,
                headers: answer
                    .headers
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
                    .collect(),
                body: answer.body.clone().into_bytes(),
            });
        }
        let mut request = Request::get(&exchange.request.path).header("host", "example.com");
        request.method = exchange.request.method.clone();
        request.body = exchange.request.body.clone().into_bytes();
        for (name, value) in &exchange.request.headers {
            request = request.header(name, value);
        }
        let response = request.send(envoy.port())?;
        let received = upstream.received().into_iter().nth(exchange.callouts.len());
        // A reply the request never used must not answer the next exchange.
        upstream.clear_replies();
        let logs = envoy.logs()[logs_before..]
            .lines()
            .filter_map(|line| line.find("wasm log").map(|at| line[at..].to_string()))
            .collect();
        let outcome = Outcome {
            upstream: received.map(|request| Observed {
                status: None,
                method: Some(request.method),
                path: Some(request.path),
                headers: request
                    .headers
                    .into_iter()
                    .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                    .collect(),
                body: request.body,
            }),
            response: Observed {
                status: Some(response.status),
                method: None,
                path: None,
                headers: response
                    .headers
                    .iter()
                    .map(|(name, value)| {
                        (name.clone(), String::from_utf8_lossy(value).into_owned())
                    })
                    .collect(),
                body: response.body,
            },
            logs,
        };
        reports.push(ExchangeReport {
            name: exchange.name.clone(),
            failures: exchange.expect.check(&outcome),
        });
    }
    Ok(reports)
}
