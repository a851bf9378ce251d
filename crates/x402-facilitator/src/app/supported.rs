//! `/supported`: what this process serves, in both versions' shapes, built whenever the
//! flags change and read without a lock held across an await.

use super::*;

pub(super) fn supported_response(flags: &Flags, served: &Served) -> SupportedResponse {
    let mut kinds = Vec::new();
    let mut signers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((scheme, network), handler) in served.schemes() {
        if flags.x402_version_support.v1 && handler.serves_v1() {
            if let Some(known) = networks::by_chain_id(network) {
                kinds.push(SupportedKind {
                    x402_version: 1,
                    scheme: scheme.clone(),
                    network: known.v1_name.to_owned(),
                    extra: handler.supported_extra(),
                });
            }
        }
        if flags.v2_serves(network) {
            kinds.push(SupportedKind {
                x402_version: 2,
                scheme: scheme.clone(),
                network: network.to_string(),
                extra: handler.supported_extra(),
            });
        }
    }
    for chain in served.chains() {
        let entry = signers
            .entry(chain.network().namespace_pattern())
            .or_default();
        for address in chain.signer_addresses() {
            if !entry.contains(&address) {
                entry.push(address);
            }
        }
    }
    let mut extensions = Vec::new();
    if flags.x402_version_support.v2 && flags.v2_enabled {
        extensions.push(payment_ids::EXTENSION.to_owned());
        if flags.discovery_enabled {
            extensions.push(x402_protocol::bazaar::EXTENSION.to_owned());
        }
        let answered = served
            .schemes()
            .into_iter()
            .filter(|((_, network), _)| flags.v2_serves(network))
            .flat_map(|(_, handler)| handler.extensions());
        for extension in answered {
            if !extensions.iter().any(|e| e == extension) {
                extensions.push(extension.to_owned());
            }
        }
    }
    SupportedResponse {
        kinds,
        extensions,
        signers,
    }
}

pub(super) async fn supported(State(state): State<Arc<AppState>>) -> Json<Value> {
    let value = match state.supported.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    Json(value)
}
