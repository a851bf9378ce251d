//! The settings of the configuration that are one key each, read in one place: the flags
//! (by the flag table), the v1 deprecation headers, the ledger URL, the nonce mode and
//! the reconciler's period.

use super::*;

/// The flags: `X402_VERSION_SUPPORT` (already read), `V2_NETWORKS`, and every on/off flag
/// of [`Flags::SWITCHES`] by its environment key over the file.
pub(super) fn flags(
    env: &dyn EnvSource,
    versions: VersionSupport,
    file_v2_networks: Option<Vec<String>>,
    file_switches: &BTreeMap<String, bool>,
) -> Result<Flags, ConfigError> {
    let v2_networks_text = match env.get("V2_NETWORKS") {
        Some(text) => text.split(',').map(str::to_owned).collect(),
        None => file_v2_networks.unwrap_or_default(),
    };
    let mut flags = Flags {
        x402_version_support: versions,
        v2_networks: parse_networks(&v2_networks_text)
            .map_err(|m| ConfigError::new("V2_NETWORKS", m))?,
        ..Flags::default()
    };
    for (name, env_key, default) in Flags::SWITCHES {
        let on = bool_setting(env, env_key, file_switches.get(*name).copied(), *default)?;
        flags.set_switch(name, on);
    }
    Ok(flags)
}

/// `V1_DEPRECATED_SINCE`, `V1_SUNSET_AT`, `V1_MIGRATION_URL`, each over its file key.
pub(super) fn v1_deprecation(
    env: &dyn EnvSource,
    [since, sunset, link]: [Option<String>; 3],
) -> Result<V1Deprecation, ConfigError> {
    let since = env.get("V1_DEPRECATED_SINCE").or(since);
    let sunset = env.get("V1_SUNSET_AT").or(sunset);
    let link = env.get("V1_MIGRATION_URL").or(link);
    V1Deprecation::new(since.as_deref(), sunset.as_deref(), link.as_deref()).map_err(|e| {
        let key = match e.setting {
            "since" => "V1_DEPRECATED_SINCE",
            "sunset" => "V1_SUNSET_AT",
            _ => "V1_MIGRATION_URL",
        };
        ConfigError::new(key, e.message)
    })
}

/// `DATABASE_URL` (default: the embedded SQLite file), a `sqlite:` or `postgres:` URL.
pub(super) fn database_url(
    env: &dyn EnvSource,
    file: Option<Secret>,
) -> Result<Secret, ConfigError> {
    let database_url = env
        .get("DATABASE_URL")
        .map(Secret::new)
        .or(file)
        .filter(|u| !u.expose().trim().is_empty())
        .unwrap_or_else(|| Secret::new(x402_ledger::DEFAULT_URL));
    let scheme = database_url
        .expose()
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !matches!(scheme.as_str(), "sqlite" | "postgres" | "postgresql") {
        return Err(ConfigError::new(
            "DATABASE_URL",
            format!("must start with sqlite: or postgres: (got {scheme:?})"),
        ));
    }
    Ok(database_url)
}

/// `NONCE_FETCH_MODE`: `cached` (default) or `always_fresh`.
pub(super) fn nonce_fetch_mode(
    env: &dyn EnvSource,
    file: Option<String>,
) -> Result<NonceFetchMode, ConfigError> {
    match env
        .get("NONCE_FETCH_MODE")
        .or(file)
        .as_deref()
        .map(str::trim)
    {
        None | Some("") | Some("cached") => Ok(NonceFetchMode::Cached),
        Some("always_fresh") => Ok(NonceFetchMode::AlwaysFresh),
        Some(other) => Err(ConfigError::new(
            "NONCE_FETCH_MODE",
            format!("{other:?} is not cached or always_fresh"),
        )),
    }
}

/// `RECONCILE_INTERVAL_SECONDS`, at least 1.
pub(super) fn reconcile_interval(
    env: &dyn EnvSource,
    file: Option<u64>,
) -> Result<Duration, ConfigError> {
    let interval = Duration::from_secs(number_setting(
        env,
        "RECONCILE_INTERVAL_SECONDS",
        file,
        DEFAULT_RECONCILE_INTERVAL.as_secs(),
    )?);
    if interval.is_zero() {
        return Err(ConfigError::new(
            "RECONCILE_INTERVAL_SECONDS",
            "must be at least 1",
        ));
    }
    Ok(interval)
}

/// `SHUTDOWN_GRACE_SECONDS` and `DRAIN_TIMEOUT_SECONDS`.
pub(super) fn shutdown(
    env: &dyn EnvSource,
    [grace, drain]: [Option<u64>; 2],
) -> Result<(Duration, Duration), ConfigError> {
    let grace = number_setting(
        env,
        "SHUTDOWN_GRACE_SECONDS",
        grace,
        DEFAULT_SHUTDOWN_GRACE.as_secs(),
    )?;
    let drain = number_setting(
        env,
        "DRAIN_TIMEOUT_SECONDS",
        drain,
        DEFAULT_DRAIN_TIMEOUT.as_secs(),
    )?;
    Ok((Duration::from_secs(grace), Duration::from_secs(drain)))
}

/// `API_KEYS` (`off`, the default, or `required`) and `API_KEYS_FILE`.
pub(super) fn api_keys(
    env: &dyn EnvSource,
    [mode, file]: [Option<String>; 2],
) -> Result<ApiKeySettings, ConfigError> {
    let required = match env.get("API_KEYS").or(mode).as_deref().map(str::trim) {
        None | Some("") | Some("off") => false,
        Some("required") => true,
        Some(other) => {
            return Err(ConfigError::new(
                "API_KEYS",
                format!("{other:?} is not off or required"),
            ))
        }
    };
    let file = env
        .get("API_KEYS_FILE")
        .or(file)
        .map(std::path::PathBuf::from);
    Ok(ApiKeySettings { required, file })
}
