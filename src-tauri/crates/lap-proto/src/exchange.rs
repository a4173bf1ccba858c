//! Sealing and opening whole datagrams: the client's request and the server's response.
//!
//! Order of checks when opening follows the cost of each: lengths first, then the signature
//! (client) or key agreement (server), then the tag, then the plaintext rules.

use ed25519_dalek::{Signature, Signer};
use uuid::Uuid;
use x25519_dalek::PublicKey;
use zeroize::Zeroizing;

use crate::crypto::{
    EphemeralSecret, ServerPublicKeys, ServerSecretKeys, SymmetricKey, derive_session_keys,
    open_in_place, seal_in_place,
};
use crate::error::{AuthStage, ProtoError, Result};
use crate::wire::{
    EPHEMERAL_LEN, MAX_DATAGRAM_LEN, MIN_REQUEST_DATAGRAM_LEN, MIN_RESPONSE_DATAGRAM_LEN,
    RESPONSE_HEADER_LEN, RESPONSE_OVERHEAD, Request, Response, SIGNATURE_LEN, TAG_LEN,
};

/// Seals `request` for `server` with a fresh ephemeral key.
///
/// Returns the datagram to send and the exchange that can open its answer. Each retry must be
/// a new call with a new ephemeral secret and the current time (profile §1).
pub fn seal_request(
    server: &ServerPublicKeys,
    request: &Request,
    ephemeral: &EphemeralSecret,
) -> Result<(Vec<u8>, PendingExchange)> {
    let plaintext = request.encode()?;
    seal_raw_request(
        server,
        &plaintext,
        ephemeral,
        request.client_id(),
        request.sku_id,
    )
}

/// Seals arbitrary request plaintext bytes, skipping every rule of [`Request::encode`].
/// Only for hostile-client simulations and negative tests: a real client uses
/// [`seal_request`]. The all-zero shared secret is still refused.
pub fn seal_raw_request(
    server: &ServerPublicKeys,
    plaintext: &[u8],
    ephemeral: &EphemeralSecret,
    expected_client_id: Uuid,
    expected_sku_id: Uuid,
) -> Result<(Vec<u8>, PendingExchange)> {
    let ephemeral_public = ephemeral.public_key();
    let keys = derive_session_keys(
        ephemeral.secret(),
        &server.x25519,
        &ephemeral_public,
        server,
    )?;
    let mut datagram = Vec::with_capacity(EPHEMERAL_LEN + plaintext.len() + TAG_LEN);
    datagram.extend_from_slice(&ephemeral_public);
    datagram.extend_from_slice(plaintext);
    let tag = seal_in_place(&keys.client_to_server, &mut datagram[EPHEMERAL_LEN..]);
    datagram.extend_from_slice(&tag);
    let pending = PendingExchange {
        server: server.clone(),
        server_to_client: keys.server_to_client,
        client_id: expected_client_id,
        sku_id: expected_sku_id,
        request_datagram_len: datagram.len(),
    };
    Ok((datagram, pending))
}

/// One attempt in flight: what the client needs to recognise and open its answer.
pub struct PendingExchange {
    server: ServerPublicKeys,
    server_to_client: SymmetricKey,
    client_id: Uuid,
    sku_id: Uuid,
    request_datagram_len: usize,
}

impl std::fmt::Debug for PendingExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingExchange")
            .field("client_id", &self.client_id)
            .field("sku_id", &self.sku_id)
            .field("request_datagram_len", &self.request_datagram_len)
            .finish_non_exhaustive()
    }
}

/// A response that passed every check, with what a product needs to re-verify it (profile §7).
pub struct Activation {
    pub response: Response,
    /// The datagram exactly as received.
    pub datagram: Vec<u8>,
    /// The server-to-client key that opens `datagram`.
    pub server_to_client_key: SymmetricKey,
}

impl std::fmt::Debug for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activation")
            .field("response", &self.response)
            .field("datagram_len", &self.datagram.len())
            .finish_non_exhaustive()
    }
}

impl PendingExchange {
    /// The length of the request datagram this exchange sent; no valid answer is longer.
    pub fn request_datagram_len(&self) -> usize {
        self.request_datagram_len
    }

    /// Opens a response datagram: length, signature, tag, then every plaintext rule.
    pub fn open(&self, datagram: &[u8]) -> Result<Activation> {
        self.check_length(datagram)?;
        verify_signature(&self.server, datagram)?;
        self.open_verified(datagram)
    }

    fn check_length(&self, datagram: &[u8]) -> Result<()> {
        if datagram.len() < MIN_RESPONSE_DATAGRAM_LEN {
            return Err(ProtoError::TooShort {
                what: "response datagram",
                len: datagram.len(),
                min: MIN_RESPONSE_DATAGRAM_LEN,
            });
        }
        if datagram.len() > self.request_datagram_len {
            return Err(ProtoError::TooLong {
                what: "response datagram",
                len: datagram.len(),
                max: self.request_datagram_len,
            });
        }
        Ok(())
    }

    /// Everything after the signature check, which the caller has done.
    fn open_verified(&self, datagram: &[u8]) -> Result<Activation> {
        let (body, tag) =
            datagram[SIGNATURE_LEN..].split_at(datagram.len() - SIGNATURE_LEN - TAG_LEN);
        let mut plaintext = Zeroizing::new(body.to_vec());
        open_in_place(&self.server_to_client, &mut plaintext, tag)?;
        let response = Response::decode(&plaintext)?;
        if response.client_id != self.client_id {
            return Err(ProtoError::ClientIdMismatch);
        }
        if response.sku_id != self.sku_id {
            return Err(ProtoError::SkuMismatch);
        }
        Ok(Activation {
            response,
            datagram: datagram.to_vec(),
            server_to_client_key: self.server_to_client.clone(),
        })
    }
}

/// Opens a datagram that may answer any of several attempts in flight (profile §1: retries
/// keep the keys of every attempt). Returns the index of the attempt it answers.
///
/// The signature is checked once per distinct server key, not once per attempt.
pub fn open_any(attempts: &[PendingExchange], datagram: &[u8]) -> Result<(usize, Activation)> {
    let mut last_error = ProtoError::Authentication(AuthStage::Tag);
    let mut verified_key: Option<&ServerPublicKeys> = None;
    for (index, attempt) in attempts.iter().enumerate() {
        if let Err(e) = attempt.check_length(datagram) {
            last_error = e;
            continue;
        }
        if verified_key != Some(&attempt.server) {
            verify_signature(&attempt.server, datagram)?;
            verified_key = Some(&attempt.server);
        }
        match attempt.open_verified(datagram) {
            Ok(activation) => return Ok((index, activation)),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

fn verify_signature(server: &ServerPublicKeys, datagram: &[u8]) -> Result<()> {
    let (signature, signed) = datagram.split_at(SIGNATURE_LEN);
    let signature = Signature::from_slice(signature)
        .map_err(|_| ProtoError::Authentication(AuthStage::Signature))?;
    server
        .verifying_key()
        .verify_strict(signed, &signature)
        .map_err(|_| ProtoError::Authentication(AuthStage::Signature))
}

/// The cheap first check a server makes before any X25519 work.
pub fn check_request_datagram_len(len: usize) -> Result<()> {
    if len < MIN_REQUEST_DATAGRAM_LEN {
        return Err(ProtoError::TooShort {
            what: "request datagram",
            len,
            min: MIN_REQUEST_DATAGRAM_LEN,
        });
    }
    if len > MAX_DATAGRAM_LEN {
        return Err(ProtoError::TooLong {
            what: "request datagram",
            len,
            max: MAX_DATAGRAM_LEN,
        });
    }
    Ok(())
}

/// Server side: opens a request datagram with the server's keys.
///
/// Checks length, the key agreement, the tag, and the plaintext rules (Version 2, exact Size,
/// Reserved zero, non-nil ids). Time, SKU and license rules are the server's policy.
pub fn open_request(keys: &ServerSecretKeys, datagram: &[u8]) -> Result<(Request, ResponseSealer)> {
    check_request_datagram_len(datagram.len())?;
    let mut ephemeral_public = [0u8; EPHEMERAL_LEN];
    ephemeral_public.copy_from_slice(&datagram[..EPHEMERAL_LEN]);
    let session = derive_session_keys(
        &keys.x25519,
        &PublicKey::from(ephemeral_public),
        &ephemeral_public,
        keys.public(),
    )?;
    let (body, tag) = datagram[EPHEMERAL_LEN..].split_at(datagram.len() - EPHEMERAL_LEN - TAG_LEN);
    let mut plaintext = Zeroizing::new(body.to_vec());
    open_in_place(&session.client_to_server, &mut plaintext, tag)?;
    let request = Request::decode(&plaintext)?;
    let sealer = ResponseSealer {
        server_to_client: session.server_to_client,
        client_id: request.client_id(),
        sku_id: request.sku_id,
        max_datagram_len: datagram.len(),
    };
    Ok((request, sealer))
}

/// What a server needs to answer one opened request.
pub struct ResponseSealer {
    server_to_client: SymmetricKey,
    client_id: Uuid,
    sku_id: Uuid,
    max_datagram_len: usize,
}

impl std::fmt::Debug for ResponseSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseSealer")
            .field("client_id", &self.client_id)
            .field("sku_id", &self.sku_id)
            .field("max_datagram_len", &self.max_datagram_len)
            .finish_non_exhaustive()
    }
}

impl ResponseSealer {
    /// The most ServerData bytes an answer may carry without outgrowing its request (§4).
    pub fn max_server_data_len(&self) -> usize {
        self.max_datagram_len
            .saturating_sub(RESPONSE_OVERHEAD + RESPONSE_HEADER_LEN)
    }

    /// The id the response must carry.
    pub fn client_id(&self) -> Uuid {
        self.client_id
    }

    /// Seals and signs a response; ClientId and SKUId are echoed from the request.
    pub fn seal(
        &self,
        keys: &ServerSecretKeys,
        server_time: u64,
        license_id: Uuid,
        server_data: &[u8],
    ) -> Result<Vec<u8>> {
        if server_data.len() > self.max_server_data_len() {
            return Err(ProtoError::TooLong {
                what: "ServerData",
                len: server_data.len(),
                max: self.max_server_data_len(),
            });
        }
        let response = Response {
            server_time,
            client_id: self.client_id,
            sku_id: self.sku_id,
            license_id,
            server_data: Zeroizing::new(server_data.to_vec()),
        };
        let plaintext = response.encode()?;
        Ok(sign_and_seal(keys, &self.server_to_client, &plaintext))
    }

    /// Seals arbitrary plaintext bytes under this exchange's key, skipping every rule.
    /// Only for hostile-server simulations and negative tests: a real server uses [`Self::seal`].
    pub fn seal_raw(&self, keys: &ServerSecretKeys, plaintext: &[u8]) -> Vec<u8> {
        sign_and_seal(keys, &self.server_to_client, plaintext)
    }
}

/// Encrypts a response plaintext and signs the ciphertext and tag.
fn sign_and_seal(
    keys: &ServerSecretKeys,
    server_to_client: &[u8; 32],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut datagram = Vec::with_capacity(RESPONSE_OVERHEAD + plaintext.len());
    datagram.resize(SIGNATURE_LEN, 0);
    datagram.extend_from_slice(plaintext);
    let tag = seal_in_place(server_to_client, &mut datagram[SIGNATURE_LEN..]);
    datagram.extend_from_slice(&tag);
    let signature = keys.ed25519.sign(&datagram[SIGNATURE_LEN..]);
    datagram[..SIGNATURE_LEN].copy_from_slice(&signature.to_bytes());
    datagram
}
