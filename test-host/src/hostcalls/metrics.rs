//! Metrics: define, increment, record, get.
//!
//! Ids are per VM and per type, with the type in the low two bits (counters 4, 8, ...; gauges 5,
//! 9, ...; histograms 6, 10, ...), and every `define` returns a new id, as in Envoy. Values are host-wide
//! by name. A counter only takes a positive increment; a histogram cannot be read back. Metric
//! names, definitions per VM, name length and histogram values are capped (`Limits`); past a cap
//! the call is `InternalFailure`.

use super::{hostcall, status, Status};
use crate::host::{lock, MetricType, MetricValue};
use crate::limits::Cap;
use crate::memory;
use crate::state::HostState;
use std::sync::atomic::Ordering;
use wasmtime::{Caller, Linker};

const TYPE_MASK: u32 = 3;

fn metric_of(state: &HostState, id: u32) -> Result<(MetricType, String), Status> {
    state.metric_ids.get(&id).cloned().ok_or(Status::NotFound)
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut caller: Caller<'_, HostState>,
         metric_type: u32,
         name_ptr: u32,
         name_len: u32,
         id_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_define_metric", |caller| {
                Ok(status((|| {
                    let kind = MetricType::from_abi(metric_type).ok_or(Status::BadArgument)?;
                    let name = memory::read_string(caller, name_ptr, name_len)?;
                    let state = caller.data_mut();
                    let limits = state.limits();
                    if name.len() > limits.metric_name_bytes {
                        return Err(state.cap_hit(Cap::MetricNameBytes));
                    }
                    let full = state.metric_ids.len() >= limits.metrics || {
                        let metrics = lock(&state.shared.metrics);
                        metrics.len() >= limits.metrics && !metrics.contains_key(&name)
                    };
                    if full {
                        return Err(state.cap_hit(Cap::Metrics));
                    }
                    // One sequence per type: counters 4, 8, ...; gauges 5, 9, ...; histograms 6, 10, ...
                    let next = &mut state.next_metric_id[metric_type as usize];
                    *next += 4;
                    let id = *next + metric_type;
                    lock(&state.shared.metrics)
                        .entry(name.clone())
                        .or_insert(match kind {
                            MetricType::Counter => MetricValue::Counter(0),
                            MetricType::Gauge => MetricValue::Gauge(0),
                            MetricType::Histogram => MetricValue::Histogram(Vec::new()),
                        });
                    state.metric_ids.insert(id, (kind, name));
                    memory::write_u32(caller, id_ptr, id)
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut caller: Caller<'_, HostState>, id: u32, offset: i64| -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_increment_metric", |caller| {
                Ok(status((|| {
                    let state = caller.data();
                    if id & TYPE_MASK > 1 {
                        return Err(Status::BadArgument);
                    }
                    let (_, name) = metric_of(state, id)?;
                    let mut metrics = lock(&state.shared.metrics);
                    match metrics.get_mut(&name) {
                        Some(MetricValue::Counter(value)) if offset > 0 => {
                            *value = value.saturating_add(offset as u64)
                        }
                        Some(MetricValue::Counter(_)) => return Err(Status::BadArgument),
                        Some(MetricValue::Gauge(value)) => {
                            *value = value.wrapping_add(offset as u64)
                        }
                        _ => return Err(Status::BadArgument),
                    }
                    Ok(())
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |mut caller: Caller<'_, HostState>, id: u32, value: u64| -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_record_metric", |caller| {
                Ok(status((|| {
                    let state = caller.data();
                    let (_, name) = metric_of(state, id)?;
                    let mut metrics = lock(&state.shared.metrics);
                    match metrics.get_mut(&name) {
                        Some(MetricValue::Counter(current)) => {
                            *current = current.saturating_add(value)
                        }
                        Some(MetricValue::Gauge(current)) => *current = value,
                        Some(MetricValue::Histogram(values)) => {
                            let held = &state.shared.histogram_values;
                            if held.load(Ordering::Relaxed) >= state.limits().histogram_values {
                                drop(metrics);
                                return Err(caller.data_mut().cap_hit(Cap::HistogramValues));
                            }
                            held.fetch_add(1, Ordering::Relaxed);
                            values.push(value)
                        }
                        None => return Err(Status::NotFound),
                    }
                    Ok(())
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut caller: Caller<'_, HostState>, id: u32, value_ptr: u32| -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_get_metric", |caller| {
                Ok(status((|| {
                    let state = caller.data();
                    let (_, name) = metric_of(state, id)?;
                    let value = match lock(&state.shared.metrics).get(&name) {
                        Some(MetricValue::Counter(value) | MetricValue::Gauge(value)) => *value,
                        _ => return Err(Status::BadArgument),
                    };
                    memory::write_u64(caller, value_ptr, value)
                })()))
            })
        },
    )?;
    Ok(())
}
