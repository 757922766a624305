//! The wasm modules of this workspace. Built with the default features it is the chain module,
//! `{"filters": [{"name": "jwt-auth", "config": {...}}, ...]}`, running any of the compiled-in
//! filters in one HTTP context. Built with `standalone` and one filter feature it is that
//! filter's own module.
//!
//! Adding a filter: one line below, and one feature and dependency in Cargo.toml.

macro_rules! modules {
    ($($feature:literal => $root:ty),+ $(,)?) => {
        #[cfg(not(feature = "standalone"))]
        static FILTERS: &[sdk_ext::filter::Factory] = &[
            $( #[cfg(feature = $feature)] sdk_ext::filter::Factory::of::<$root>(), )+
        ];

        #[cfg(not(feature = "standalone"))]
        sdk_ext::export_module!(sdk_ext::dispatch::Module::Chain(FILTERS));

        $(
            #[cfg(all(feature = "standalone", feature = $feature))]
            sdk_ext::export_standalone!($root);
        )+

        #[cfg(feature = "standalone")]
        const _: () = assert!(
            0 $( + cfg!(feature = $feature) as usize )+ == 1,
            "a standalone module holds exactly one filter: --no-default-features --features standalone,<filter>"
        );
    };
}

modules! {
    "header-rewrite" => header_rewrite::filter::HeaderRewriteRoot,
    "jwt-auth" => jwt_auth::filter::JwtAuthRoot,
    "rate-limit" => rate_limit::filter::RateLimitRoot,
    "basic-auth" => basic_auth::filter::BasicAuthRoot,
    "cors" => cors::filter::CorsRoot,
    "rbac" => rbac::filter::RbacRoot,
    "ext-authz" => ext_authz::filter::ExtAuthzRoot,
    "json-redact" => json_redact::filter::JsonRedactRoot,
    "global-rate-limit" => global_rate_limit::filter::GlobalRateLimitRoot,
    // make new: filters above.
}
