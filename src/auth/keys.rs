//! Signing-key cryptography: generating key pairs, signing with keys parsed once, and the public
//! JWK of each key. Storage of keys lives in `service::keys`; this module does no I/O.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Value, json};

pub use crate::domain::capabilities::SigningAlgorithm;

/// The jsonwebtoken algorithm of `algorithm`, used to pin verification.
pub fn jwt_algorithm(algorithm: SigningAlgorithm) -> Algorithm {
    match algorithm {
        SigningAlgorithm::Rs256 => Algorithm::RS256,
        SigningAlgorithm::Es256 => Algorithm::ES256,
        SigningAlgorithm::EdDsa => Algorithm::EdDSA,
    }
}

/// A key pair parsed once and kept ready to sign.
enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private signing key with its id, ready to sign without re-parsing.
pub struct SigningKey {
    kid: String,
    algorithm: SigningAlgorithm,
    signer: Signer,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A freshly generated key: its PKCS#8 private key (to store) and its public JWK (to publish).
pub struct GeneratedKey {
    /// PKCS#8 DER of the private key.
    pub pkcs8: Vec<u8>,
    /// The public key as a JWK, with `kid`, `alg` and `use`.
    pub public_jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Generates a key pair for `algorithm`, labelled `kid`.
pub fn generate(algorithm: SigningAlgorithm, kid: &str) -> anyhow::Result<GeneratedKey> {
    let (pkcs8, mut jwk) = match algorithm {
        SigningAlgorithm::Rs256 => {
            let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
            let der = pair
                .as_der()
                .map_err(|_| anyhow::anyhow!("RSA key serialisation failed"))?;
            let public = pair.public_key();
            let jwk = json!({
                "kty": "RSA",
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            });
            (der.as_ref().to_vec(), jwk)
        }
        SigningAlgorithm::Es256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?;
            let der = pair
                .to_pkcs8v1()
                .map_err(|_| anyhow::anyhow!("P-256 key serialisation failed"))?;
            // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
            let point = pair.public_key().as_ref();
            anyhow::ensure!(point.len() == 65 && point[0] == 4, "unexpected P-256 point");
            let jwk = json!({
                "kty": "EC",
                "crv": "P-256",
                "x": b64(&point[1..33]),
                "y": b64(&point[33..65]),
            });
            (der.as_ref().to_vec(), jwk)
        }
        SigningAlgorithm::EdDsa => {
            let pair = Ed25519KeyPair::generate()
                .map_err(|_| anyhow::anyhow!("Ed25519 key generation failed"))?;
            let der = pair
                .to_pkcs8()
                .map_err(|_| anyhow::anyhow!("Ed25519 key serialisation failed"))?;
            let jwk = json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(pair.public_key().as_ref()),
            });
            (der.as_ref().to_vec(), jwk)
        }
    };
    if let Value::Object(map) = &mut jwk {
        map.insert("kid".into(), json!(kid));
        map.insert("alg".into(), json!(algorithm.as_str()));
        map.insert("use".into(), json!("sig"));
    }
    Ok(GeneratedKey {
        pkcs8,
        public_jwk: jwk,
    })
}

impl SigningKey {
    /// Parses a stored PKCS#8 private key once.
    pub fn from_pkcs8(
        kid: String,
        algorithm: SigningAlgorithm,
        pkcs8: &[u8],
    ) -> anyhow::Result<Self> {
        let bad = |e: aws_lc_rs::error::KeyRejected| anyhow::anyhow!("key {kid} rejected: {e}");
        let signer = match algorithm {
            SigningAlgorithm::Rs256 => Signer::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(bad)?),
            SigningAlgorithm::Es256 => Signer::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(bad)?,
            ),
            SigningAlgorithm::EdDsa => {
                Signer::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(bad)?)
            }
        };
        Ok(Self {
            kid,
            algorithm,
            signer,
            rng: SystemRandom::new(),
        })
    }

    /// The key id published in the JWKS and put in each token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// Signs `message` (a JWS signing input) and returns the raw signature.
    pub fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        match &self.signer {
            Signer::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
                    .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
                Ok(signature)
            }
            Signer::Ecdsa(pair) => Ok(pair
                .sign(&self.rng, message)
                .map_err(|_| anyhow::anyhow!("ECDSA signing failed"))?
                .as_ref()
                .to_vec()),
            Signer::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// A public key for verification, pinned to the algorithm recorded with it.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The key's algorithm; a token is only ever checked with this one.
    pub algorithm: SigningAlgorithm,
    /// The decoded public key.
    pub key: DecodingKey,
}

impl VerifyingKey {
    /// Builds a verifying key from a published JWK.
    pub fn from_jwk(algorithm: SigningAlgorithm, jwk: &Value) -> anyhow::Result<Self> {
        let field = |name: &str| {
            jwk.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow::anyhow!("JWK lacks {name}"))
        };
        let key = match algorithm {
            SigningAlgorithm::Rs256 => DecodingKey::from_rsa_components(field("n")?, field("e")?)?,
            SigningAlgorithm::Es256 => DecodingKey::from_ec_components(field("x")?, field("y")?)?,
            SigningAlgorithm::EdDsa => DecodingKey::from_ed_components(field("x")?)?,
        };
        Ok(Self { algorithm, key })
    }
}
