//! Shared queues: register, resolve, enqueue, dequeue.
//!
//! Tokens are host-wide, from 1. Registering a name again returns the same token and makes the
//! caller's root context the one notified. Every enqueue posts one `proxy_on_queue_ready` to that
//! owner; it is delivered when the test calls `Plugin::deliver_queue_ready`, never inside the
//! enqueuing callback, as Envoy posts it to the owner's event loop. Queue names, waiting items
//! and pending notifications count toward `Limits::queue_bytes`, and queues toward
//! `Limits::queues`; past either the call is `InternalFailure`.

use super::{hostcall, status, Status};
use crate::host::{lock, Queue};
use crate::limits::Cap;
use crate::memory;
use crate::state::HostState;
use wasmtime::{Caller, Linker};

/// What one pending `proxy_on_queue_ready` notification counts toward `Limits::queue_bytes`.
pub(crate) const NOTIFICATION_BYTES: usize = 8;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut caller: Caller<'_, HostState>,
         name_ptr: u32,
         name_len: u32,
         token_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_register_shared_queue", |caller| {
                Ok(status((|| {
                    let name = memory::read_string(caller, name_ptr, name_len)?;
                    let state = caller.data_mut();
                    let owner = Some((state.vm_key, state.root_context_id));
                    let limits = state.limits().clone();
                    let token = {
                        let mut queues = lock(&state.shared.queues);
                        let existing = queues
                            .by_token
                            .iter_mut()
                            .find(|(_, queue)| queue.vm_id == state.vm_id && queue.name == name);
                        match existing {
                            Some((&token, queue)) => {
                                queue.owner = owner;
                                token
                            }
                            None => {
                                let bytes = queues.bytes + state.vm_id.len() + name.len();
                                let cap = if queues.by_token.len() >= limits.queues {
                                    Some(Cap::Queues)
                                } else if bytes > limits.queue_bytes {
                                    Some(Cap::QueueBytes)
                                } else {
                                    None
                                };
                                if let Some(cap) = cap {
                                    drop(queues);
                                    return Err(state.cap_hit(cap));
                                }
                                queues.bytes = bytes;
                                queues.last_token += 1;
                                let token = queues.last_token;
                                queues.by_token.insert(
                                    token,
                                    Queue {
                                        vm_id: state.vm_id.clone(),
                                        name,
                                        owner,
                                        ..Queue::default()
                                    },
                                );
                                token
                            }
                        }
                    };
                    memory::write_u32(caller, token_ptr, token)
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut caller: Caller<'_, HostState>,
         vm_id_ptr: u32,
         vm_id_len: u32,
         name_ptr: u32,
         name_len: u32,
         token_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_resolve_shared_queue", |caller| {
                Ok(status((|| {
                    let vm_id = memory::read_string(caller, vm_id_ptr, vm_id_len)?;
                    let name = memory::read_string(caller, name_ptr, name_len)?;
                    let state = caller.data();
                    let vm_id = if vm_id.is_empty() {
                        state.vm_id.clone()
                    } else {
                        vm_id
                    };
                    let token = lock(&state.shared.queues)
                        .by_token
                        .iter()
                        .find(|(_, queue)| queue.vm_id == vm_id && queue.name == name)
                        .map(|(&token, _)| token)
                        .ok_or(Status::NotFound)?;
                    memory::write_u32(caller, token_ptr, token)
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut caller: Caller<'_, HostState>,
         token: u32,
         value_ptr: u32,
         value_len: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_enqueue_shared_queue", |caller| {
                Ok(status((|| {
                    let value = memory::read(caller, value_ptr, value_len)?;
                    let shared = caller.data().shared.clone();
                    let owner = {
                        let mut queues = lock(&shared.queues);
                        // The notification is kept until delivered, so it counts too.
                        let bytes = queues.bytes + value.len() + NOTIFICATION_BYTES;
                        if bytes > shared.limits.queue_bytes {
                            drop(queues);
                            return Err(caller.data_mut().cap_hit(Cap::QueueBytes));
                        }
                        let queue = queues.by_token.get_mut(&token).ok_or(Status::NotFound)?;
                        queue.items.push_back(value);
                        let owner = queue.owner;
                        queues.bytes = bytes;
                        owner
                    };
                    if let Some((vm_key, root_context_id)) = owner {
                        shared.notify(vm_key, root_context_id, token);
                    }
                    Ok(())
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut caller: Caller<'_, HostState>,
         token: u32,
         value_ptr_ptr: u32,
         value_size_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_dequeue_shared_queue", |caller| {
                let item = {
                    let mut queues = lock(&caller.data().shared.queues);
                    let item = match queues.by_token.get_mut(&token) {
                        None => Err(Status::NotFound),
                        Some(queue) => queue.items.pop_front().ok_or(Status::Empty),
                    };
                    if let Ok(value) = &item {
                        queues.bytes -= value.len();
                    }
                    item
                };
                memory::return_result(caller, item, value_ptr_ptr, value_size_ptr)
            })
        },
    )?;
    Ok(())
}
