use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

#[test]
fn svm_network_takes_the_svm_key_and_policy_defaults() {
    let config = Config::load(
        None,
        &env(&[
            ("RPC_URL_SOLANA_DEVNET", "http://127.0.0.1:8899"),
            ("SVM_PRIVATE_KEY", "base58-keypair"),
            ("EVM_PRIVATE_KEY", KEY),
        ]),
    )
    .unwrap();
    let network = &config.networks[0];
    assert_eq!(
        network.chain_id.to_string(),
        "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
    );
    assert_eq!(network.signer_keys.len(), 1);
    assert_eq!(
        network.signer_keys[0].expose(),
        "base58-keypair",
        "the SVM key, not the EVM one"
    );
    assert_eq!(
        network.chain,
        ChainOptions::Svm(x402_svm::SvmOptions::default())
    );
    assert_eq!(
        network.min_signer_balance,
        x402_svm::config::DEFAULT_MIN_FEE_PAYER_LAMPORTS
    );
    let missing = Config::load(
        None,
        &env(&[("RPC_URL_SOLANA", "http://x"), ("EVM_PRIVATE_KEY", KEY)]),
    );
    assert!(missing.unwrap_err().to_string().contains("SVM_PRIVATE_KEY"));
}

#[test]
fn stellar_networks_take_the_stellar_key_by_either_pubnet_spelling() {
    let seed = "SAKICEVQLYWGSOJS4WW7HZJWAHZVEEBS527LHK5V4MLJALYKICQCJXMW";
    for (key, id) in [
        ("RPC_URL_STELLAR_TESTNET", "stellar:testnet"),
        ("RPC_URL_STELLAR_PUBNET", "stellar:pubnet"),
        ("RPC_URL_STELLAR", "stellar:pubnet"),
    ] {
        let config = Config::load(
            None,
            &env(&[
                (key, "http://127.0.0.1:8000"),
                ("STELLAR_PRIVATE_KEY", seed),
                ("EVM_PRIVATE_KEY", KEY),
            ]),
        )
        .unwrap();
        let network = &config.networks[0];
        assert_eq!(network.chain_id.to_string(), id, "{key}");
        assert_eq!(
            network.signer_keys[0].expose(),
            seed,
            "the Stellar key, not the EVM one"
        );
        assert_eq!(
            network.chain,
            ChainOptions::Stellar(x402_stellar::StellarOptions::default())
        );
        assert_eq!(
            network.min_signer_balance,
            x402_stellar::config::DEFAULT_MIN_SIGNER_STROOPS
        );
        assert!(
            !network.assets.listed().is_empty(),
            "Circle's USDC by default"
        );
    }
}

#[test]
fn fogo_by_its_retired_spelling_is_served_under_its_genesis_id_with_a_notice() {
    let dir = std::env::temp_dir().join(format!("x402-config-fogo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("facilitator.toml");
    std::fs::write(
        &path,
        "[networks.\"fogo:mainnet\"]\nrpc_urls = [\"http://127.0.0.1:1\"]\nsigner_keys = [\"k\"]\nassets = [\"Mint1111111111111111111111111111111111111111\"]\n",
    )
    .unwrap();
    let config = Config::load(Some(&path), &env(&[])).unwrap();
    assert_eq!(
        config.networks[0].chain_id.as_str(),
        "solana:CDLtwKnaCoK157uaHQDj4fHu72AyD251"
    );
    assert_eq!(config.networks[0].family, ChainFamily::Svm);
    assert_eq!(config.notices.len(), 1, "{:?}", config.notices);
    assert!(config.notices[0].contains("solana:CDLtwKnaCoK157uaHQDj4fHu72AyD251"));
    // The v1 name and the environment variable reach the same network, without a notice.
    let by_env = Config::load(
        None,
        &env(&[
            ("RPC_URL_FOGO_TESTNET", "http://127.0.0.1:1"),
            ("SVM_PRIVATE_KEY", "k"),
            ("ASSETS_FOGO_TESTNET", "*"),
        ]),
    )
    .unwrap();
    assert_eq!(
        by_env.networks[0].chain_id.as_str(),
        "solana:9GGSFo95raqzZxWqKM5tGYvJp5iv4Dm5"
    );
    assert!(by_env.notices.is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_v1_retirement_dates_are_read_and_checked() {
    let config = Config::load(
        None,
        &env(&[
            ("V1_DEPRECATED_SINCE", "2026-12-01T00:00:00Z"),
            ("V1_SUNSET_AT", "2027-06-30T00:00:00Z"),
        ]),
    )
    .unwrap();
    assert_eq!(config.v1_deprecation.headers().len(), 2);
    let err = Config::load(None, &env(&[("V1_SUNSET_AT", "soon")])).unwrap_err();
    assert_eq!(err.key, "V1_SUNSET_AT");
    let err = Config::load(None, &env(&[("V1_MIGRATION_URL", "docs/v2.md")])).unwrap_err();
    assert_eq!(err.key, "V1_MIGRATION_URL");
    assert!(Config::load(None, &env(&[]))
        .unwrap()
        .v1_deprecation
        .headers()
        .is_empty());
}

#[test]
fn defaults() {
    let config = Config::load(None, &env(&[])).unwrap();
    assert_eq!(config.port, 8080);
    assert_eq!(config.host.to_string(), "0.0.0.0");
    assert_eq!(
        config.flags.x402_version_support,
        VersionSupport { v1: true, v2: true }
    );
    assert!(config.networks.is_empty());
    assert_eq!(config.api_keys, ApiKeySettings::default(), "no keys needed");
    let keyed = Config::load(
        None,
        &env(&[("API_KEYS", "required"), ("API_KEYS_FILE", "/etc/k.toml")]),
    )
    .unwrap();
    assert!(keyed.api_keys.required);
    assert_eq!(
        keyed.api_keys.file.as_deref(),
        Some(std::path::Path::new("/etc/k.toml"))
    );
}

#[test]
fn rpc_url_env_adds_network_with_evm_key() {
    let config = Config::load(
        None,
        &env(&[
            ("RPC_URL_BASE_SEPOLIA", "http://127.0.0.1:8545"),
            ("EVM_PRIVATE_KEY", KEY),
            ("X402_VERSION_SUPPORT", "v2"),
        ]),
    )
    .unwrap();
    assert_eq!(config.networks.len(), 1);
    assert_eq!(config.networks[0].chain_id.as_str(), "eip155:84532");
    assert_eq!(config.networks[0].signer_keys[0].expose(), KEY);
    assert_eq!(
        config.flags.x402_version_support,
        VersionSupport {
            v1: false,
            v2: true
        }
    );
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (vec![("PORT", "eighty")], "PORT"),
        (vec![("HOST", "localhost:1")], "HOST"),
        (vec![("X402_VERSION_SUPPORT", "v3")], "X402_VERSION_SUPPORT"),
        (vec![("SIGNER_TYPE", "kms")], "SIGNER_TYPE"),
        (vec![("RPC_URL_ATLANTIS", "http://x")], "RPC_URL_ATLANTIS"),
        (vec![("RPC_URL_BASE", "http://x")], "RPC_URL_BASE"),
        (vec![("API_KEYS", "optional")], "API_KEYS"),
        (
            vec![("RPC_URL_BASE", "ftp://x"), ("EVM_PRIVATE_KEY", KEY)],
            "RPC_URL_BASE",
        ),
    ];
    for (pairs, key) in cases {
        let err = Config::load(None, &env(&pairs)).unwrap_err();
        assert_eq!(err.key, key, "{err}");
        assert!(err.to_string().starts_with("invalid configuration: "));
    }
}

#[test]
fn secrets_do_not_print() {
    let s = Secret::new("http://user:apikey@rpc");
    assert_eq!(format!("{s:?}"), "Secret(***)");
}

#[test]
fn file_then_env_override() {
    let dir = std::env::temp_dir().join(format!("x402-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("facilitator.toml");
    std::fs::write(
        &path,
        format!(
            "port = 9000\nx402_version_support = \"v1\"\n[networks.\"eip155:31337\"]\nrpc_urls = [\"http://127.0.0.1:1\", \"http://127.0.0.1:2\"]\nsigner_keys = [\"{KEY}\"]\nreceipt_timeout_ms = 500\nassets = [\"*\"]\n"
        ),
    )
    .unwrap();
    let config = Config::load(Some(&path), &env(&[("PORT", "9100")])).unwrap();
    assert_eq!(config.port, 9100);
    assert_eq!(config.flags.x402_version_support.to_string(), "v1");
    assert_eq!(config.networks[0].chain_id.as_str(), "eip155:31337");
    assert_eq!(config.networks[0].rpc_urls.len(), 2);
    assert_eq!(
        config.networks[0].receipt_timeout,
        Duration::from_millis(500)
    );

    std::fs::write(&path, "prot = 1\n").unwrap();
    let err = Config::load(Some(&path), &env(&[])).unwrap_err();
    assert!(err.message.contains("prot"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
