//! `cosign-check --key cosign.pub [--http] [--user U] IMAGE`: exits 0 when sigstore-rs finds a
//! cosign signature of IMAGE (a tag or digest reference) that checks with the key; the password
//! for `--user` is read from `COSIGN_CHECK_PASSWORD`. What `cosign verify --key
//! --insecure-ignore-tlog` does, with the Sigstore project's Rust implementation.

use anyhow::{Context as _, bail};
use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
use sigstore::cosign::{ClientBuilder, CosignCapabilities as _, verify_constraints};
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (mut key, mut http, mut user, mut image) = (None, false, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--key" => key = args.next(),
            "--http" => http = true,
            "--user" => user = args.next(),
            _ if image.is_none() => image = Some(a),
            _ => bail!("unexpected argument {a}"),
        }
    }
    let (key, image) = (key.context("--key is required")?, image.context("an image is required")?);
    let pem = std::fs::read(&key).with_context(|| format!("read {key}"))?;
    let auth = match user {
        Some(u) => Auth::Basic(u, std::env::var("COSIGN_CHECK_PASSWORD").context("COSIGN_CHECK_PASSWORD")?),
        None => Auth::Anonymous,
    };
    let config = ClientConfig {
        protocol: if http { ClientProtocol::Http } else { ClientProtocol::Https },
        ..Default::default()
    };
    let mut client = ClientBuilder::default().with_oci_client_config(config).build()?;
    let reference: OciReference = image.parse().with_context(|| format!("parse {image}"))?;
    let layers = client.trusted_signature_layers(&auth, &reference).await?;
    let constraints: VerificationConstraintVec = vec![Box::new(PublicKeyVerifier::try_from(&pem)?)];
    match verify_constraints(&layers, constraints.iter()) {
        Ok(()) => {
            println!("{image}: {} signature layer(s), verified with {key}", layers.len());
            Ok(())
        }
        Err(e) => bail!("{image}: no signature checks with {key} ({} unsatisfied, {} layer(s))", e.unsatisfied_constraints.len(), layers.len()),
    }
}
