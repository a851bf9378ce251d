//! The registry of well-known networks: v1 name ↔ CAIP-2 id ↔ chain family.
//!
//! v1 requests name networks (`base-sepolia`), v2 requests use CAIP-2 (`eip155:84532`).
//! The registry translates between the two and gives v1 names to v2 networks when a
//! response must be written in v1. It is not a whitelist: in v2 any valid CAIP-2 id
//! is served as long as a chain is configured for it.
//!
//! Ids were checked against the official SDKs and the public chain registries; where
//! the project's seed documents disagreed, the corrected value is used here and listed
//! in `docs/networks.md`.

use crate::caip2::ChainId;

/// The chain family decides which chain crate can serve a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainFamily {
    /// Ethereum-compatible chains (`eip155` namespace).
    Evm,
    /// Solana Virtual Machine chains: Solana itself and Fogo.
    Svm,
    /// NEAR Protocol.
    Near,
    /// Stellar.
    Stellar,
}

/// One well-known network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownNetwork {
    /// The canonical v1 name, as v1 clients send it.
    pub v1_name: &'static str,
    /// Other v1 spellings accepted on input (never produced).
    pub v1_aliases: &'static [&'static str],
    /// Earlier CAIP-2 spellings (the seed documents' guesses). Configuration accepts them
    /// and maps them to `caip2`; a request using one is refused with a message naming
    /// `caip2`, because answering under a different id than the request used would
    /// confuse the resource server.
    pub retired_caip2: &'static [&'static str],
    /// The CAIP-2 id, as v2 clients send it.
    pub caip2: &'static str,
    /// Which chain crate serves it.
    pub family: ChainFamily,
    /// Whether it is a test network.
    pub testnet: bool,
}

impl KnownNetwork {
    /// The CAIP-2 id as a parsed value.
    ///
    /// Every registry entry is checked by a unit test, so parsing cannot fail for them.
    pub fn chain_id(&self) -> ChainId {
        match ChainId::parse(self.caip2) {
            Ok(id) => id,
            // Unreachable for registry entries (see `every_entry_round_trips`); kept total
            // so no request path can panic.
            Err(_) => ChainId::eip155(0),
        }
    }
}

const fn evm(v1_name: &'static str, caip2: &'static str, testnet: bool) -> KnownNetwork {
    KnownNetwork {
        v1_name,
        v1_aliases: &[],
        retired_caip2: &[],
        caip2,
        family: ChainFamily::Evm,
        testnet,
    }
}

/// Every network the facilitator knows by name.
pub static KNOWN_NETWORKS: &[KnownNetwork] = &[
    evm("base", "eip155:8453", false),
    evm("base-sepolia", "eip155:84532", true),
    evm("avalanche", "eip155:43114", false),
    evm("avalanche-fuji", "eip155:43113", true),
    evm("polygon", "eip155:137", false),
    evm("polygon-amoy", "eip155:80002", true),
    evm("optimism", "eip155:10", false),
    evm("optimism-sepolia", "eip155:11155420", true),
    evm("ethereum", "eip155:1", false),
    KnownNetwork {
        v1_name: "ethereum-sepolia",
        // The official SDKs spell Ethereum Sepolia `sepolia`.
        v1_aliases: &["sepolia"],
        retired_caip2: &[],
        caip2: "eip155:11155111",
        family: ChainFamily::Evm,
        testnet: true,
    },
    evm("arbitrum", "eip155:42161", false),
    evm("arbitrum-sepolia", "eip155:421614", true),
    evm("celo", "eip155:42220", false),
    // Seeds said 44787, which is the retired Alfajores testnet; Celo Sepolia is 11142220.
    evm("celo-sepolia", "eip155:11142220", true),
    evm("hyperevm", "eip155:999", false),
    // Seeds said 333; the HyperEVM testnet chain id is 998.
    evm("hyperevm-testnet", "eip155:998", true),
    evm("sei", "eip155:1329", false),
    evm("sei-testnet", "eip155:1328", true),
    evm("unichain", "eip155:130", false),
    evm("unichain-sepolia", "eip155:1301", true),
    evm("monad", "eip155:143", false),
    KnownNetwork {
        v1_name: "solana",
        v1_aliases: &[],
        retired_caip2: &[],
        caip2: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
        family: ChainFamily::Svm,
        testnet: false,
    },
    KnownNetwork {
        v1_name: "solana-devnet",
        v1_aliases: &[],
        retired_caip2: &[],
        caip2: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
        family: ChainFamily::Svm,
        testnet: true,
    },
    KnownNetwork {
        v1_name: "near",
        v1_aliases: &[],
        retired_caip2: &[],
        caip2: "near:mainnet",
        family: ChainFamily::Near,
        testnet: false,
    },
    KnownNetwork {
        v1_name: "near-testnet",
        v1_aliases: &[],
        retired_caip2: &[],
        caip2: "near:testnet",
        family: ChainFamily::Near,
        testnet: true,
    },
    KnownNetwork {
        v1_name: "stellar",
        // The CAIP-2 reference spelled as a v1 name: `RPC_URL_STELLAR_PUBNET` serves it too.
        v1_aliases: &["stellar-pubnet"],
        retired_caip2: &[],
        caip2: "stellar:pubnet",
        family: ChainFamily::Stellar,
        testnet: false,
    },
    KnownNetwork {
        v1_name: "stellar-testnet",
        v1_aliases: &[],
        retired_caip2: &[],
        caip2: "stellar:testnet",
        family: ChainFamily::Stellar,
        testnet: true,
    },
    // Fogo is an SVM chain: its ids are `solana:` plus the first 32 characters of its genesis
    // hash (published by Fogo: mainnet CDLtwKnaCoK157uaHQDj4fHu72AyD2519Cphmpiq6hvT, testnet
    // 9GGSFo95raqzZxWqKM5tGYvJp5iv4Dm565S4r8h5PEu9), the form other SDKs already use for it.
    // The seeds' `fogo:mainnet` / `fogo:testnet` were guesses; see docs/networks.md.
    KnownNetwork {
        v1_name: "fogo",
        v1_aliases: &[],
        retired_caip2: &["fogo:mainnet"],
        caip2: "solana:CDLtwKnaCoK157uaHQDj4fHu72AyD251",
        family: ChainFamily::Svm,
        testnet: false,
    },
    KnownNetwork {
        v1_name: "fogo-testnet",
        v1_aliases: &[],
        retired_caip2: &["fogo:testnet"],
        caip2: "solana:9GGSFo95raqzZxWqKM5tGYvJp5iv4Dm5",
        family: ChainFamily::Svm,
        testnet: true,
    },
];

/// Finds a network by its v1 name or one of its accepted aliases.
pub fn by_v1_name(name: &str) -> Option<&'static KnownNetwork> {
    KNOWN_NETWORKS
        .iter()
        .find(|n| n.v1_name == name || n.v1_aliases.contains(&name))
}

/// Finds a network by its CAIP-2 id.
pub fn by_chain_id(id: &ChainId) -> Option<&'static KnownNetwork> {
    KNOWN_NETWORKS.iter().find(|n| n.caip2 == id.as_str())
}

/// Finds the network an earlier, retired CAIP-2 spelling stood for (`fogo:mainnet`).
pub fn by_retired_caip2(text: &str) -> Option<&'static KnownNetwork> {
    KNOWN_NETWORKS
        .iter()
        .find(|n| n.retired_caip2.contains(&text))
}

/// The chain family of any CAIP-2 id, known or not, judged by its namespace.
pub fn family_of(id: &ChainId) -> Option<ChainFamily> {
    if let Some(known) = by_chain_id(id) {
        return Some(known.family);
    }
    match id.namespace() {
        "eip155" => Some(ChainFamily::Evm),
        "solana" => Some(ChainFamily::Svm),
        "near" => Some(ChainFamily::Near),
        "stellar" => Some(ChainFamily::Stellar),
        _ => None,
    }
}

/// Resolves what an operator wrote in configuration (`V2_NETWORKS`, `RPC_URL_*`):
/// a v1 name, an alias, a retired CAIP-2 spelling, or a CAIP-2 id.
pub fn resolve_network(text: &str) -> Result<ChainId, crate::caip2::Caip2Error> {
    match by_v1_name(text).or_else(|| by_retired_caip2(text)) {
        Some(known) => Ok(known.chain_id()),
        None => ChainId::parse(text),
    }
}

/// The assets a network serves when its configuration names none: the USDC contract or
/// mint the official x402 SDKs use there. Strangers can make the facilitator pay gas for a
/// payment in any token they deploy; by default only these are settled.
static DEFAULT_ASSETS: &[(&str, &[&str])] = &[
    // Circle's native USDC on NEAR (implicit account ids of its token contracts).
    (
        "near:mainnet",
        &["17208628f84f5d6ad33f0da3bbbeb27ffcb398eac501a31bd6ad2011e36133a1"],
    ),
    (
        "near:testnet",
        &["3e2210e1184b45b64c8a434c0a7e7b23cc04ea7eb7a6c3c32520d03d4afcb8af"],
    ),
    // Circle's USDC on Stellar (its Stellar Asset Contract ids, as @x402/stellar has them).
    (
        "stellar:pubnet",
        &["CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75"],
    ),
    (
        "stellar:testnet",
        &["CBIELTK6YBZJU5UP2WWQEUCYKLPU6AUNZ2BQ4WWFEIE3USCIHMXQDAMA"],
    ),
    (
        "eip155:8453",
        &["0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"],
    ),
    (
        "eip155:84532",
        &["0x036CbD53842c5426634e7929541eC2318f3dCF7e"],
    ),
    (
        "eip155:43114",
        &["0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E"],
    ),
    (
        "eip155:43113",
        &["0x5425890298aed601595a70AB815c96711a31Bc65"],
    ),
    (
        "eip155:137",
        &["0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"],
    ),
    (
        "eip155:80002",
        &["0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582"],
    ),
    ("eip155:10", &["0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85"]),
    (
        "eip155:11155420",
        &["0x5fd84259d66Cd46123540766Be93DFE6D43130D7"],
    ),
    ("eip155:1", &["0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"]),
    (
        "eip155:11155111",
        &["0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"],
    ),
    (
        "eip155:42161",
        &["0xaf88d065e77c8cC2239327C5EDb3A432268e5831"],
    ),
    (
        "eip155:421614",
        &["0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d"],
    ),
    (
        "eip155:42220",
        &["0xcebA9300f2b948710d2653dD7B07f33A8B32118C"],
    ),
    (
        "eip155:1329",
        &["0xe15fC38F6D8c56aF07bbCBe3BAf5708A2Bf42392"],
    ),
    (
        "eip155:1328",
        &["0x4fCF1784B31630811181f670Aea7A7bEF803eaED"],
    ),
    (
        "eip155:130",
        &["0x078D782b760474a361dDA0AF3839290b0EF57AD6"],
    ),
    (
        "eip155:1301",
        &["0x31d0220469e10c4E71834a79b1f276d740d3768F"],
    ),
    (
        "eip155:143",
        &["0x754704Bc059F8C67012fEd69BC8A327a5aafb603"],
    ),
    (
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
        &["EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"],
    ),
    (
        "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
        &["4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"],
    ),
];

/// The assets served on `id` by default (see `docs/operations.md`); empty where the
/// registry knows none, and then the configuration must name them.
pub fn default_assets(id: &ChainId) -> &'static [&'static str] {
    DEFAULT_ASSETS
        .iter()
        .find(|(caip2, _)| *caip2 == id.as_str())
        .map(|(_, assets)| *assets)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_entry_round_trips() {
        for n in KNOWN_NETWORKS {
            let id = ChainId::parse(n.caip2).unwrap_or_else(|e| panic!("{}: {e}", n.v1_name));
            assert_eq!(n.chain_id(), id);
            assert_eq!(by_v1_name(n.v1_name).map(|k| k.caip2), Some(n.caip2));
            assert_eq!(by_chain_id(&id).map(|k| k.v1_name), Some(n.v1_name));
            assert_eq!(family_of(&id), Some(n.family));
            for alias in n.v1_aliases {
                assert_eq!(by_v1_name(alias).map(|k| k.v1_name), Some(n.v1_name));
            }
            for retired in n.retired_caip2 {
                // A retired spelling still parses as CAIP-2 but is no served id of its own.
                let parsed = ChainId::parse(retired).unwrap();
                assert!(by_chain_id(&parsed).is_none(), "{retired}");
                assert_eq!(resolve_network(retired).unwrap(), id);
            }
            if n.family == ChainFamily::Evm {
                assert!(id.evm_chain_id().is_some(), "{}", n.v1_name);
            }
        }
    }

    #[test]
    fn names_and_ids_are_unique() {
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        for n in KNOWN_NETWORKS {
            assert!(names.insert(n.v1_name), "duplicate name {}", n.v1_name);
            for alias in n.v1_aliases {
                assert!(names.insert(alias), "duplicate alias {alias}");
            }
            assert!(ids.insert(n.caip2), "duplicate id {}", n.caip2);
            for retired in n.retired_caip2 {
                assert!(ids.insert(retired), "duplicate id {retired}");
            }
        }
    }

    #[test]
    fn seed_networks_are_all_present() {
        // Appendix A of the seed infrastructure analysis, v1 names.
        let seeds = [
            "base",
            "base-sepolia",
            "avalanche",
            "avalanche-fuji",
            "polygon",
            "polygon-amoy",
            "optimism",
            "optimism-sepolia",
            "ethereum",
            "ethereum-sepolia",
            "arbitrum",
            "arbitrum-sepolia",
            "celo",
            "celo-sepolia",
            "hyperevm",
            "hyperevm-testnet",
            "sei",
            "sei-testnet",
            "unichain",
            "unichain-sepolia",
            "monad",
            "solana",
            "solana-devnet",
            "near",
            "near-testnet",
            "stellar",
            "stellar-testnet",
            "fogo",
            "fogo-testnet",
        ];
        for name in seeds {
            assert!(by_v1_name(name).is_some(), "{name} missing");
        }
        assert_eq!(seeds.len(), KNOWN_NETWORKS.len());
    }

    #[test]
    fn corrected_ids() {
        assert_eq!(by_v1_name("celo-sepolia").unwrap().caip2, "eip155:11142220");
        assert_eq!(by_v1_name("hyperevm-testnet").unwrap().caip2, "eip155:998");
        assert!(by_chain_id(&ChainId::parse("eip155:44787").unwrap()).is_none());
        assert!(by_chain_id(&ChainId::parse("eip155:333").unwrap()).is_none());
    }

    #[test]
    fn fogo_ids_are_its_genesis_hash_prefixes() {
        // Fogo's published genesis hashes; CAIP-2's Solana profile keeps the first 32
        // characters, and the SVM deep health compares the node's genesis against them.
        for (name, genesis) in [
            ("fogo", "CDLtwKnaCoK157uaHQDj4fHu72AyD2519Cphmpiq6hvT"),
            (
                "fogo-testnet",
                "9GGSFo95raqzZxWqKM5tGYvJp5iv4Dm565S4r8h5PEu9",
            ),
        ] {
            let known = by_v1_name(name).unwrap();
            let id = known.chain_id();
            assert_eq!(id.namespace(), "solana");
            assert_eq!(id.reference(), &genesis[..32]);
            assert_eq!(known.family, ChainFamily::Svm);
        }
        assert_eq!(
            resolve_network("fogo:mainnet").unwrap().as_str(),
            "solana:CDLtwKnaCoK157uaHQDj4fHu72AyD251"
        );
        assert_eq!(
            by_retired_caip2("fogo:testnet").unwrap().v1_name,
            "fogo-testnet"
        );
        assert!(by_retired_caip2("solana:CDLtwKnaCoK157uaHQDj4fHu72AyD251").is_none());
        // The namespace alone no longer makes an SVM network.
        assert_eq!(family_of(&ChainId::parse("fogo:mainnet").unwrap()), None);
    }

    #[test]
    fn resolve_accepts_names_aliases_and_ids() {
        assert_eq!(
            resolve_network("base-sepolia").unwrap().as_str(),
            "eip155:84532"
        );
        assert_eq!(
            resolve_network("sepolia").unwrap().as_str(),
            "eip155:11155111"
        );
        assert_eq!(
            resolve_network("eip155:31337").unwrap().as_str(),
            "eip155:31337"
        );
        assert!(resolve_network("not a network").is_err());
        assert_eq!(
            family_of(&ChainId::parse("eip155:31337").unwrap()),
            Some(ChainFamily::Evm)
        );
        assert_eq!(family_of(&ChainId::parse("cosmos:hub").unwrap()), None);
    }

    #[test]
    fn default_assets_belong_to_known_networks() {
        for (caip2, assets) in DEFAULT_ASSETS {
            let id = ChainId::parse(caip2).unwrap();
            assert!(by_chain_id(&id).is_some(), "{caip2} is not in the registry");
            assert!(!assets.is_empty());
            assert_eq!(default_assets(&id), *assets);
        }
        assert!(default_assets(&ChainId::eip155(31337)).is_empty());
    }
}
