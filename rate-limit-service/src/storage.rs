//! Counter storages for limitador: its in-memory storage behind the async trait, and our own
//! Redis storage (limitador's `redis_storage` feature cannot be built without RocksDB).

use async_trait::async_trait;
use limitador::counter::Counter;
use limitador::limit::{Context, Limit};
use limitador::reservation::ReservationId;
use limitador::storage::in_memory::InMemoryStorage;
use limitador::storage::{AsyncCounterStorage, Authorization, CounterStorage, StorageErr};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many distinct qualified counters (one per descriptor value) memory keeps.
const MEMORY_CACHE_SIZE: u64 = 1_000_000;

/// limitador's in-memory storage, made async (0.14 only has a blocking one; it never blocks).
pub(crate) struct MemoryStorage(InMemoryStorage);

impl MemoryStorage {
    pub(crate) fn new(limits: &[Limit]) -> Result<Self, StorageErr> {
        let storage = InMemoryStorage::new(MEMORY_CACHE_SIZE);
        // Creates the counters of limits without variables up front, as limitador's blocking
        // `Storage::add_limit` does (its async one does not).
        for limit in limits {
            storage.add_counter(limit)?;
        }
        Ok(MemoryStorage(storage))
    }
}

#[async_trait]
impl AsyncCounterStorage for MemoryStorage {
    async fn is_within_limits(&self, counter: &Counter, delta: u64) -> Result<bool, StorageErr> {
        self.0.is_within_limits(counter, delta)
    }
    async fn update_counter(&self, counter: &Counter, delta: u64) -> Result<(), StorageErr> {
        self.0.update_counter(counter, delta)
    }
    async fn check<'a>(
        &self,
        counters: &mut Vec<Counter>,
        delta: u64,
    ) -> Result<Authorization, StorageErr> {
        self.0.check(counters, delta)
    }
    async fn check_and_update<'a>(
        &self,
        counters: &mut Vec<Counter>,
        delta: u64,
    ) -> Result<Authorization, StorageErr> {
        self.0.check_and_update(counters, delta)
    }
    async fn get_counters(
        &self,
        limits: &HashSet<Arc<Limit>>,
    ) -> Result<HashSet<Counter>, StorageErr> {
        self.0.get_counters(limits)
    }
    async fn delete_counters(&self, limits: &HashSet<Arc<Limit>>) -> Result<(), StorageErr> {
        self.0.delete_counters(limits)
    }
    async fn clear(&self) -> Result<(), StorageErr> {
        self.0.clear()
    }
}

/// The bound on any one Redis operation, reconnection included: a request never hangs on Redis.
const OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);
/// The bound on one reply from a connected Redis.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);
const KEY_PREFIX: &str = "rate-limit-service:";

/// Checks every counter of a call and, only if all stay within their limits, increments them
/// all, starting a counter's window (its expiry) on its first hit. Atomic in Redis, hence exact
/// across service instances. ARGV: delta, mode (check | update | force), then per key its
/// window in ms and its limit. Returns {index of the first counter over its limit or 0, then
/// per key its value before the call and its TTL in ms (-2: none yet)}.
const SCRIPT: &str = r"
local delta = tonumber(ARGV[1])
local mode = ARGV[2]
local res = {0}
for i, key in ipairs(KEYS) do
  local value = tonumber(redis.call('GET', key) or '0')
  res[2 * i] = value
  res[2 * i + 1] = redis.call('PTTL', key)
  if mode ~= 'force' and res[1] == 0 and value + delta > tonumber(ARGV[2 * i + 2]) then
    res[1] = i
  end
end
if mode ~= 'check' and res[1] == 0 then
  for i, key in ipairs(KEYS) do
    redis.call('INCRBY', key, delta)
    if res[2 * i + 1] < 0 then
      redis.call('PEXPIRE', key, ARGV[2 * i + 1])
    end
  end
end
return res
";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Check,
    Update,
    Force,
}

/// Counters in Redis: one key per counter, all state in Redis, so instances sharing a Redis and
/// restarted instances continue the same counts.
pub(crate) struct RedisStorage {
    connection: ConnectionManager,
    script: redis::Script,
    /// The cause of the last failure: `StorageErr` cannot carry it (see `storage_error`).
    last_error: Arc<Mutex<String>>,
}

impl RedisStorage {
    /// Connects and PINGs; fails if Redis is unreachable.
    pub(crate) async fn connect(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL {url}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            // Few, short reconnection attempts: a request waits at most OPERATION_TIMEOUT
            // anyway, and the next request after a failed attempt triggers a new one.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connect = async {
            let mut connection = ConnectionManager::new_with_config(client, config).await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>(connection)
        };
        let connection = match tokio::time::timeout(OPERATION_TIMEOUT * 2, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(format!("Redis at {url} is unreachable: {e}")),
            Err(_) => return Err(format!("Redis at {url} is unreachable: timed out")),
        };
        let storage = RedisStorage {
            connection,
            script: redis::Script::new(SCRIPT),
            last_error: Arc::new(Mutex::new(String::new())),
        };
        // `storage_error` relies on limitador's default `reserve` failing; make sure it still
        // does, so that a storage failure can never read as success.
        if storage
            .reserve(&mut Vec::new(), &ReservationId::new(), 0, 0, Duration::ZERO)
            .await
            .is_ok()
        {
            return Err("this limitador's default `reserve` succeeds: storage errors cannot be reported; update rate-limit-service".into());
        }
        Ok(storage)
    }

    /// The cause of the last Redis failure, for the gRPC status.
    pub(crate) fn last_error(&self) -> Arc<Mutex<String>> {
        Arc::clone(&self.last_error)
    }

    /// Logs `cause` and returns a `StorageErr`. limitador gives `StorageErr` no public
    /// constructor; the least bad way to get one is the trait's default `reserve`, which we do
    /// not override and which always fails ("reservations are not supported", checked in
    /// `connect`). Its message is wrong, so the real cause is logged and kept in `last_error`.
    async fn storage_error(&self, cause: String) -> Result<Authorization, StorageErr> {
        log::error!("redis: {cause}");
        if let Ok(mut last) = self.last_error.lock() {
            *last = cause;
        }
        self.reserve(&mut Vec::new(), &ReservationId::new(), 0, 0, Duration::ZERO)
            .await
    }

    /// Runs a Redis operation within OPERATION_TIMEOUT.
    async fn run<T, F>(&self, what: &str, op: F) -> Result<T, String>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(OPERATION_TIMEOUT, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("{what}: {e}")),
            Err(_) => Err(format!("{what}: timed out after {OPERATION_TIMEOUT:?}")),
        }
    }

    async fn eval(
        &self,
        counters: &mut [Counter],
        delta: u64,
        mode: Mode,
    ) -> Result<Authorization, StorageErr> {
        if counters.is_empty() {
            return Ok(Authorization::Ok);
        }
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(delta).arg(match mode {
            Mode::Check => "check",
            Mode::Update => "update",
            Mode::Force => "force",
        });
        for counter in counters.iter() {
            invocation
                .key(key_of(counter))
                .arg(window_ms(counter))
                .arg(counter.max_value());
        }
        let mut connection = self.connection.clone();
        let reply: Vec<i64> = match self
            .run("script", invocation.invoke_async(&mut connection))
            .await
        {
            Ok(r) => r,
            Err(cause) => return self.storage_error(cause).await,
        };
        if reply.len() != 1 + 2 * counters.len() {
            return self
                .storage_error(format!("script: unexpected reply {reply:?}"))
                .await;
        }
        let mut limited = None;
        for (i, (counter, pair)) in counters.iter_mut().zip(reply[1..].chunks(2)).enumerate() {
            let (value, ttl_ms) = (pair[0].max(0) as u64, pair[1]);
            // Pre-delta remaining, as limitador's storages: its limiter subtracts delta itself.
            counter.set_remaining(counter.max_value().saturating_sub(value));
            counter.set_expires_in(if ttl_ms > 0 {
                Duration::from_millis(ttl_ms as u64)
            } else {
                counter.window()
            });
            if reply[0] == i as i64 + 1 {
                limited = Some(counter.limit().name().map(str::to_owned));
            }
        }
        Ok(match limited {
            Some(name) => Authorization::Limited(name),
            None => Authorization::Ok,
        })
    }

    async fn scan(&self, pattern: String) -> Result<Vec<String>, String> {
        let mut connection = self.connection.clone();
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = self
                .run(
                    "scan",
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut connection),
                )
                .await?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    async fn delete(&self, pattern: String) -> Result<(), String> {
        let keys = self.scan(pattern).await?;
        let mut connection = self.connection.clone();
        for chunk in keys.chunks(500) {
            self.run::<(), _>(
                "del",
                redis::cmd("DEL").arg(chunk).query_async(&mut connection),
            )
            .await?;
        }
        Ok(())
    }

    async fn counters_of(&self, limit: &Arc<Limit>) -> Result<Vec<Counter>, String> {
        let prefix = limit_prefix(limit);
        let keys = self.scan(format!("{}*", glob_escape(&prefix))).await?;
        let mut connection = self.connection.clone();
        let mut out = Vec::new();
        for key in keys {
            let (value, ttl): (Option<u64>, i64) = self
                .run(
                    "get",
                    redis::pipe()
                        .get(&key)
                        .pttl(&key)
                        .query_async(&mut connection),
                )
                .await?;
            let vars: HashMap<String, String> = key
                .strip_prefix(&prefix)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default();
            // Rebuilding a counter from its stored values works for identifier variables, the
            // only ones this service uses; others are skipped.
            let (Some(value), true) = (value, ttl > 0) else {
                continue;
            };
            if let Ok(Some(mut counter)) = Counter::new(Arc::clone(limit), &Context::from(vars)) {
                counter.set_remaining(counter.max_value().saturating_sub(value));
                counter.set_expires_in(Duration::from_millis(ttl as u64));
                out.push(counter);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl AsyncCounterStorage for RedisStorage {
    async fn is_within_limits(&self, counter: &Counter, delta: u64) -> Result<bool, StorageErr> {
        let mut counters = vec![counter.clone()];
        self.eval(&mut counters, delta, Mode::Check)
            .await
            .map(|a| matches!(a, Authorization::Ok))
    }

    async fn update_counter(&self, counter: &Counter, delta: u64) -> Result<(), StorageErr> {
        let mut counters = vec![counter.clone()];
        self.eval(&mut counters, delta, Mode::Force)
            .await
            .map(|_| ())
    }

    async fn check<'a>(
        &self,
        counters: &mut Vec<Counter>,
        delta: u64,
    ) -> Result<Authorization, StorageErr> {
        self.eval(counters, delta, Mode::Check).await
    }

    async fn check_and_update<'a>(
        &self,
        counters: &mut Vec<Counter>,
        delta: u64,
    ) -> Result<Authorization, StorageErr> {
        self.eval(counters, delta, Mode::Update).await
    }

    async fn get_counters(
        &self,
        limits: &HashSet<Arc<Limit>>,
    ) -> Result<HashSet<Counter>, StorageErr> {
        let mut out = HashSet::new();
        for limit in limits {
            match self.counters_of(limit).await {
                Ok(counters) => out.extend(counters),
                Err(cause) => return self.storage_error(cause).await.map(|_| HashSet::new()),
            }
        }
        Ok(out)
    }

    async fn delete_counters(&self, limits: &HashSet<Arc<Limit>>) -> Result<(), StorageErr> {
        for limit in limits {
            let pattern = format!("{}*", glob_escape(&limit_prefix(limit)));
            if let Err(cause) = self.delete(pattern).await {
                return self.storage_error(cause).await.map(|_| ());
            }
        }
        Ok(())
    }

    async fn clear(&self) -> Result<(), StorageErr> {
        match self.delete(format!("{}*", glob_escape(KEY_PREFIX))).await {
            Ok(()) => Ok(()),
            Err(cause) => self.storage_error(cause).await.map(|_| ()),
        }
    }
}

fn window_ms(counter: &Counter) -> u64 {
    u64::try_from(counter.window().as_millis()).unwrap_or(u64::MAX)
}

/// The key prefix of a limit's counters: the limit's identity (as limitador's `Eq`: namespace,
/// window, conditions, variables) in JSON, which is unambiguous for any text.
fn limit_prefix(limit: &Limit) -> String {
    let mut conditions: Vec<String> = limit.conditions().into_iter().collect();
    conditions.sort();
    let mut variables: Vec<String> = limit.variables().into_iter().collect();
    variables.sort();
    let identity = (
        limit.namespace().as_ref(),
        limit.seconds(),
        conditions,
        variables,
    );
    // Serialising strings and numbers to JSON cannot fail.
    let json = serde_json::to_string(&identity).unwrap_or_default();
    format!("{KEY_PREFIX}{json}:")
}

/// A counter's key: its limit's prefix and its variables' values.
fn key_of(counter: &Counter) -> String {
    let vars: &BTreeMap<String, String> = counter.set_variables();
    let json = serde_json::to_string(vars).unwrap_or_default();
    format!("{}{json}", limit_prefix(counter.limit()))
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use limitador::limit::Expression;

    #[test]
    fn keys_are_distinct_per_limit_and_value() {
        let limit = |ns: &str, secs| {
            Arc::new(Limit::new(
                ns,
                5,
                secs,
                Vec::new(),
                [Expression::parse("v0").unwrap()],
            ))
        };
        let counter = |limit: &Arc<Limit>, v: &str| {
            let ctx = Context::from(HashMap::from([("v0".to_owned(), v.to_owned())]));
            Counter::new(Arc::clone(limit), &ctx).unwrap().unwrap()
        };
        let a = limit("d/a", 60);
        let keys = [
            key_of(&counter(&a, "x")),
            key_of(&counter(&a, "y")),
            key_of(&counter(&limit("d/a", 1), "x")),
            key_of(&counter(&limit("d/b", 60), "x")),
        ];
        assert_eq!(
            keys[0],
            r#"rate-limit-service:["d/a",60,[],["v0"]]:{"v0":"x"}"#
        );
        let distinct: HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
        assert!(keys[0].starts_with(&limit_prefix(&a)));
    }

    #[test]
    fn glob_escaping() {
        assert_eq!(glob_escape(r#"a*b?[c]\"#), r#"a\*b\?\[c\]\\"#);
    }
}
