//! Requirement evaluation: which tokens a rule needs, checked in Envoy's order (issuer, time,
//! audience, subject, lifetime, then signature), with a bounded cache of verified tokens.

use crate::config::{Config, Location, Requirement};
use crate::extract::{RequestInfo, Token};
use crate::jwks::KeySet;
use crate::jwt::{audience_allowed, Jwt, JwtError};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

/// The keys of a provider at the moment of a check.
#[derive(Debug, Clone)]
pub enum KeyState {
    /// Usable keys.
    Ready(Rc<KeySet>),
    /// A remote JWKS is not loaded yet: the request must wait.
    Loading,
    /// The remote JWKS could not be fetched.
    Failed,
}

/// A token that passed, with what its provider does with good tokens.
#[derive(Debug, Clone)]
pub struct Good<'a> {
    /// Provider index.
    pub provider: usize,
    /// The token and its location.
    pub token: Token<'a>,
    /// The parsed token.
    pub jwt: Rc<Jwt>,
}

/// The result of evaluating a requirement.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// Finished: allowed (with the good tokens) or refused.
    Done(Result<(), JwtError>, Vec<Good<'a>>),
    /// Provider `usize` has no keys yet; evaluate again once it has.
    NeedKeys(usize),
}

/// Verified tokens, bounded, first in first out. Keyed by the whole token; each entry says
/// which providers verified it, so a hit skips parsing and the signature but not the claims.
/// When a provider's key set changes or expires, [`TokenCache::forget_provider`] drops those
/// marks, so a token whose key left the set is verified again (and refused) rather than served
/// from the cache: a sweep at each key-set change keeps a hit one lookup and one bit test.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: HashMap<Rc<str>, (Rc<Jwt>, u64)>,
    order: VecDeque<Rc<str>>,
    capacity: usize,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            entries: HashMap::with_capacity(capacity.min(1024)),
            order: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
        }
    }

    fn get(&self, token: &str) -> Option<(Rc<Jwt>, u64)> {
        self.entries.get(token).cloned()
    }

    fn remove(&mut self, token: &str) {
        if self.entries.remove(token).is_some() {
            self.order.retain(|key| &**key != token);
        }
    }

    fn insert(&mut self, token: &str, jwt: Rc<Jwt>, provider: usize) {
        if self.capacity == 0 {
            return;
        }
        if let Some((_, mask)) = self.entries.get_mut(token) {
            *mask |= 1 << provider;
            return;
        }
        while self.entries.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
        let key: Rc<str> = Rc::from(token);
        self.order.push_back(key.clone());
        self.entries.insert(key, (jwt, 1 << provider));
    }

    /// Forgets that provider `provider` verified any token (its key set changed or expired).
    /// Parsed tokens stay, so a later check skips the parsing but not the signature.
    pub fn forget_provider(&mut self, provider: usize) {
        let Some(bit) = 1u64.checked_shl(provider as u32) else {
            return;
        };
        for (_, mask) in self.entries.values_mut() {
            *mask &= !bit;
        }
    }

    /// Whether provider `provider` verified `token` (with the key set it has now).
    pub fn verified_by(&self, token: &str, provider: usize) -> bool {
        self.entries.get(token).is_some_and(|(_, mask)| {
            1u64.checked_shl(provider as u32)
                .is_some_and(|bit| mask & bit != 0)
        })
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Counts of cache use during one evaluation, for the metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct CacheUse {
    /// Tokens whose signature check was skipped.
    pub hits: u64,
    /// Tokens checked in full.
    pub misses: u64,
}

/// Everything one evaluation reads.
pub struct Evaluation<'a, 'e> {
    /// The configuration.
    pub config: &'a Config,
    /// The request's tokens and realm.
    pub info: &'a RequestInfo,
    /// Host time in seconds.
    pub now: u64,
    /// The keys of each provider.
    pub keys: &'e dyn Fn(usize) -> KeyState,
    /// The verified-token cache.
    pub cache: &'e mut TokenCache,
    /// Cache use so far.
    pub cache_use: CacheUse,
}

type Step = Result<Result<(), JwtError>, usize>;

impl<'a> Evaluation<'a, '_> {
    /// Evaluates `requirement`.
    pub fn run(&mut self, requirement: &Requirement) -> Outcome<'a> {
        let mut good = Vec::new();
        match self.requirement(requirement, &mut good) {
            Ok(result) => Outcome::Done(result, good),
            Err(provider) => Outcome::NeedKeys(provider),
        }
    }

    fn requirement(&mut self, requirement: &Requirement, good: &mut Vec<Good<'a>>) -> Step {
        match requirement {
            Requirement::AllowAll => Ok(Ok(())),
            Requirement::Provider(provider, audiences) => {
                self.provider(*provider, audiences.as_deref(), good)
            }
            Requirement::All(children) => {
                for child in children {
                    if let Err(error) = self.requirement(child, good)? {
                        return Ok(Err(error));
                    }
                }
                Ok(Ok(()))
            }
            Requirement::Any {
                children,
                allow_missing,
                allow_failed,
            } => {
                // Envoy reports the last real failure; an unknown issuer only beats a missing token.
                let mut status = JwtError::Missing;
                for child in children {
                    let mut child_good = Vec::new();
                    match self.requirement(child, &mut child_good)? {
                        Ok(()) => {
                            good.extend(child_good);
                            return Ok(Ok(()));
                        }
                        Err(JwtError::Missing) => {}
                        Err(JwtError::UnknownIssuer) if status == JwtError::Missing => {
                            status = JwtError::UnknownIssuer
                        }
                        Err(JwtError::UnknownIssuer) => {}
                        Err(error) => status = error,
                    }
                }
                Ok(
                    if *allow_failed || (*allow_missing && status == JwtError::Missing) {
                        Ok(())
                    } else {
                        Err(status)
                    },
                )
            }
            Requirement::AllowMissing => self.provider_less(good, false),
            Requirement::AllowMissingOrFailed => self.provider_less(good, true),
        }
    }

    /// Every token of the provider must pass, the last found checked first.
    fn provider(
        &mut self,
        provider: usize,
        audiences: Option<&[String]>,
        good: &mut Vec<Good<'a>>,
    ) -> Step {
        let (config, info): (&'a Config, &'a RequestInfo) = (self.config, self.info);
        let Some(locations) = config.providers.get(provider).map(|p| &p.locations) else {
            return Ok(Err(JwtError::Missing));
        };
        let tokens = info.tokens(locations);
        if tokens.is_empty() {
            return Ok(Err(JwtError::Missing));
        }
        for token in tokens.into_iter().rev() {
            match self.token(provider, &token, audiences)? {
                Ok(jwt) => good.push(Good {
                    provider,
                    token,
                    jwt,
                }),
                Err(error) => return Ok(Err(error)),
            }
        }
        Ok(Ok(()))
    }

    /// `allow_missing` and `allow_missing_or_failed`: tokens from every provider's locations,
    /// each checked by the provider its `iss` names, if a provider with that issuer (or with
    /// none) looks where the token was found. With `allow_missing` the result is the first
    /// token's (the last checked), as in Envoy; with `allow_missing_or_failed` it is a pass.
    fn provider_less(&mut self, good: &mut Vec<Good<'a>>, allow_failed: bool) -> Step {
        let (config, info): (&'a Config, &'a RequestInfo) = (self.config, self.info);
        let tokens = info.tokens(&config.any_locations);
        let mut result = Ok(());
        for token in tokens.into_iter().rev() {
            let checked = match self.parsed(&token.value).and_then(|jwt| {
                self.issuer_looks_at(&jwt.iss, token.location)?;
                self.provider_for(&jwt.iss)
            }) {
                Ok(provider) => self
                    .token(provider, &token, None)?
                    .map(|jwt| (provider, jwt)),
                Err(error) => Err(error),
            };
            result = match checked {
                Ok((provider, jwt)) => {
                    good.push(Good {
                        provider,
                        token,
                        jwt,
                    });
                    Ok(())
                }
                Err(error) => Err(error),
            };
        }
        Ok(if allow_failed { Ok(()) } else { result })
    }

    /// Envoy binds a token to where it was found: some provider that looks at `location` must
    /// name `issuer`, or name none.
    fn issuer_looks_at(&self, issuer: &str, location: &Location) -> Result<(), JwtError> {
        self.config
            .providers
            .iter()
            .any(|provider| {
                provider.locations.contains(location)
                    && (provider.issuer.is_empty() || provider.issuer == issuer)
            })
            .then_some(())
            .ok_or(JwtError::UnknownIssuer)
    }

    fn provider_for(&self, issuer: &str) -> Result<usize, JwtError> {
        let providers = &self.config.providers;
        providers
            .iter()
            .position(|provider| provider.issuer == issuer)
            .or_else(|| {
                (!issuer.is_empty())
                    .then(|| {
                        providers
                            .iter()
                            .position(|provider| provider.issuer.is_empty())
                    })
                    .flatten()
            })
            .ok_or(JwtError::UnknownIssuer)
    }

    fn parsed(&self, token: &str) -> Result<Rc<Jwt>, JwtError> {
        match self.cache.get(token) {
            Some((jwt, _)) => Ok(jwt),
            None => Jwt::parse(token).map(Rc::new),
        }
    }

    /// One token against one provider.
    fn token(
        &mut self,
        index: usize,
        token: &Token<'_>,
        audiences: Option<&[String]>,
    ) -> Result<Result<Rc<Jwt>, JwtError>, usize> {
        let Some(provider) = self.config.providers.get(index) else {
            return Ok(Err(JwtError::NoValidKeys));
        };
        let cached = self.cache.get(&token.value);
        let jwt = match &cached {
            Some((jwt, _)) => jwt.clone(),
            None => match Jwt::parse(&token.value) {
                Ok(jwt) => Rc::new(jwt),
                Err(error) => return Ok(Err(error)),
            },
        };
        if !provider.issuer.is_empty() && provider.issuer != jwt.iss {
            return Ok(Err(JwtError::UnknownIssuer));
        }
        if let Err(error) = jwt.check_time(self.now, provider.clock_skew) {
            if cached.is_some() && error == JwtError::Expired {
                self.cache.remove(&token.value);
            }
            return Ok(Err(error));
        }
        if !audience_allowed(audiences.unwrap_or(&provider.audiences), &jwt.audiences) {
            return Ok(Err(JwtError::AudienceNotAllowed));
        }
        if provider
            .subjects
            .as_ref()
            .is_some_and(|subjects| !subjects.matches(jwt.sub.as_bytes()))
        {
            return Ok(Err(JwtError::VerificationFail));
        }
        if let Some(max) = provider.max_lifetime {
            let remaining = jwt.exp.checked_sub(self.now).map(Duration::from_secs);
            if jwt.exp == 0 || remaining.is_some_and(|remaining| remaining >= max) {
                return Ok(Err(JwtError::VerificationFail));
            }
        }
        if cached.is_some_and(|(_, mask)| mask & (1 << index) != 0) {
            self.cache_use.hits += 1;
            return Ok(Ok(jwt));
        }
        self.cache_use.misses += 1;
        let keys = match (self.keys)(index) {
            KeyState::Ready(keys) => keys,
            KeyState::Loading => return Err(index),
            KeyState::Failed => return Ok(Err(JwtError::JwksFetchFail)),
        };
        if let Err(error) = keys.verify(&jwt) {
            return Ok(Err(error));
        }
        if token.value.len() <= provider.cache_max_token {
            self.cache.insert(&token.value, jwt.clone(), index);
        }
        Ok(Ok(jwt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{JwtAuthConfig, KeySource};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sdk_ext::headers::Snapshot;
    use serde_json::json;

    const SECRET: &[u8] = b"a secret that is long enough for HS256";
    const A: &str = "https://a.example";
    const B: &str = "https://b.example";

    /// Provider `a` reads `x-a` and cookie `jwt`; `b` reads `x-b`; rule `i` has requirement i.
    fn config(requirements: &[serde_json::Value]) -> Config {
        let keys =
            json!({"keys": [{"kty": "oct", "k": URL_SAFE_NO_PAD.encode(SECRET)}]}).to_string();
        let rules: Vec<_> = requirements
            .iter()
            .enumerate()
            .map(|(i, requires)| json!({"match": {"path": format!("/{i}")}, "requires": requires}))
            .collect();
        let config = json!({
            "providers": {
                "a": {"issuer": A, "local_jwks": {"inline_string": keys}, "from_headers": [{"name": "x-a"}], "from_cookies": ["jwt"]},
                "b": {"issuer": B, "local_jwks": {"inline_string": keys}, "from_headers": [{"name": "x-b"}]}
            },
            "rules": rules
        });
        sdk_ext::config::load::<JwtAuthConfig>(config.to_string().as_bytes()).unwrap()
    }

    fn sign(claims: serde_json::Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#);
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn forge(token: &str) -> String {
        let mut forged = token.to_string();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        forged
    }

    /// Evaluates rule `rule` for a request with `headers`: the result and, for each good
    /// token, its provider and where it was found.
    fn evaluate(
        config: &Config,
        rule: usize,
        headers: &[(&str, &str)],
    ) -> (Result<(), JwtError>, Vec<(usize, Location)>) {
        let mut all = vec![(":path", "/")];
        all.extend_from_slice(headers);
        let headers = Snapshot::from_wire(sdk_ext::wire::encode_pairs(&all)).unwrap();
        let info = RequestInfo {
            path: b"/".to_vec(),
            headers,
        };
        let keys = |provider: usize| match &config.providers[provider].keys {
            KeySource::Local(keys) => KeyState::Ready(keys.clone()),
            KeySource::Remote(_) => KeyState::Failed,
        };
        let mut cache = TokenCache::new(0);
        let mut evaluation = Evaluation {
            config,
            info: &info,
            now: 1_000,
            keys: &keys,
            cache: &mut cache,
            cache_use: CacheUse::default(),
        };
        match evaluation.run(&config.rules[rule].requirement) {
            Outcome::Done(result, good) => (
                result,
                good.into_iter()
                    .map(|good| (good.provider, good.token.location.clone()))
                    .collect(),
            ),
            Outcome::NeedKeys(provider) => panic!("local keys, yet provider {provider} waits"),
        }
    }

    fn x_a() -> Location {
        Location::Header("x-a".into(), String::new())
    }

    #[test]
    fn every_token_of_a_provider_must_verify() {
        let config = config(&[json!({"provider_name": "a"})]);
        let good = sign(json!({"iss": A, "sub": "1"}));
        let forged = forge(&good);
        for headers in [
            [("x-a", &*good), ("x-a", &*forged)],
            [("x-a", &*forged), ("x-a", &*good)],
            [("x-a", &*good), ("cookie", &format!("s=1;  jwt={forged}"))],
        ] {
            assert_eq!(
                evaluate(&config, 0, &headers).0,
                Err(JwtError::VerificationFail),
                "{headers:?}"
            );
        }
        let (result, good_tokens) = evaluate(&config, 0, &[("x-a", &good), ("x-a", &good)]);
        assert_eq!(result, Ok(()));
        assert_eq!(
            good_tokens,
            [(0, x_a()), (0, x_a())],
            "identical tokens are each checked"
        );
        let (result, _) = evaluate(
            &config,
            0,
            &[("cookie", "s=1"), ("cookie", &format!("jwt={good}"))],
        );
        assert_eq!(
            result,
            Ok(()),
            "a token in the second Cookie header is found"
        );
    }

    #[test]
    fn without_a_provider_the_first_token_decides_as_in_native() {
        let config = config(&[
            json!({"allow_missing": {}}),
            json!({"allow_missing_or_failed": {}}),
        ]);
        let good = sign(json!({"iss": A}));
        let forged = forge(&good);
        // Checked last to first; every token is checked, the first one's result stands.
        let (result, good_tokens) = evaluate(&config, 0, &[("x-a", &good), ("x-a", &forged)]);
        assert_eq!((result, good_tokens.len()), (Ok(()), 1));
        let (result, good_tokens) = evaluate(&config, 0, &[("x-a", &forged), ("x-a", &good)]);
        assert_eq!(
            (result, good_tokens.len()),
            (Err(JwtError::VerificationFail), 1)
        );
        assert_eq!(evaluate(&config, 0, &[]).0, Ok(()));
        assert_eq!(evaluate(&config, 1, &[("x-a", &forged)]), (Ok(()), vec![]));
    }

    #[test]
    fn a_token_is_bound_to_the_providers_that_look_where_it_was_found() {
        let config = config(&[
            json!({"allow_missing": {}}),
            json!({"allow_missing_or_failed": {}}),
            json!({"requires_any": {"requirements": [{"provider_name": "a"}, {"allow_missing": {}}]}}),
            json!({"requires_any": {"requirements": [{"provider_name": "a"}, {"provider_name": "b"}]}}),
        ]);
        let of_a = sign(json!({"iss": A}));
        let of_b = sign(json!({"iss": B}));
        for rule in [0, 2, 3] {
            assert_eq!(
                evaluate(&config, rule, &[("x-a", &of_b)]).0,
                Err(JwtError::UnknownIssuer),
                "rule {rule}: b's token where only a looks"
            );
        }
        assert_eq!(
            evaluate(&config, 0, &[("x-b", &of_a)]).0,
            Err(JwtError::UnknownIssuer)
        );
        assert_eq!(
            evaluate(&config, 1, &[("x-a", &of_b)]),
            (Ok(()), vec![]),
            "allowed to fail, but b's token adds nothing"
        );
        assert_eq!(
            evaluate(&config, 0, &[("x-b", &of_b)]),
            (
                Ok(()),
                vec![(1, Location::Header("x-b".into(), String::new()))]
            )
        );
        assert_eq!(
            evaluate(&config, 0, &[("x-a", &of_a)]),
            (Ok(()), vec![(0, x_a())])
        );
        assert_eq!(
            evaluate(&config, 3, &[("x-b", &of_a)]).0,
            Err(JwtError::UnknownIssuer),
            "a's token where b looks"
        );
    }

    fn jwt(issuer: &str) -> (String, Rc<Jwt>) {
        let part = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let token = format!(
            "{}.{}.{}",
            part(r#"{"alg":"RS256"}"#),
            part(&format!(r#"{{"iss":"{issuer}"}}"#)),
            part("signature")
        );
        let parsed = Rc::new(Jwt::parse(&token).expect("a well-formed token"));
        (token, parsed)
    }

    #[test]
    fn forgetting_a_provider_keeps_the_others_verifications() {
        let mut cache = TokenCache::new(4);
        let (first, first_jwt) = jwt("a");
        let (second, second_jwt) = jwt("b");
        cache.insert(&first, first_jwt.clone(), 0);
        cache.insert(&first, first_jwt, 1);
        cache.insert(&second, second_jwt, 1);
        cache.forget_provider(1);
        assert!(cache.verified_by(&first, 0));
        assert!(!cache.verified_by(&first, 1));
        assert!(!cache.verified_by(&second, 1));
        assert_eq!(cache.len(), 2, "parsed tokens stay");
        cache.insert(&second, jwt("b").1, 1);
        assert!(
            cache.verified_by(&second, 1),
            "verified again after the change"
        );
        cache.forget_provider(64);
        assert!(
            cache.verified_by(&second, 1),
            "an index past the mask changes nothing"
        );
    }
}
