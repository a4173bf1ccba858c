//! The EK public key's canonical bytes, the same whichever way it was found: an RSA modulus
//! without leading zeros, ECC coordinates padded to the curve's size, or either taken from a
//! DER X.509 certificate.

/// Strips the leading zero bytes of a big-endian unsigned integer.
pub fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// `x ‖ y`, each left-padded with zeros to `size` bytes (leading zeros are not significant in
/// TPM or DER encodings of a coordinate).
pub fn ecc_canonical(x: &[u8], y: &[u8], size: usize) -> Option<Vec<u8>> {
    let x = strip_leading_zeros(x);
    let y = strip_leading_zeros(y);
    if x.len() > size || y.len() > size {
        return None;
    }
    let mut out = vec![0u8; 2 * size];
    out[size - x.len()..size].copy_from_slice(x);
    out[2 * size - y.len()..].copy_from_slice(y);
    Some(out)
}

/// The public key inside a DER X.509 certificate, in canonical form, with its algorithm name.
/// NV areas are often larger than the certificate: bytes after the outer SEQUENCE are ignored.
#[cfg(all(feature = "tpm", target_os = "linux"))]
pub fn certificate_public_key(der: &[u8]) -> Result<(String, Vec<u8>), String> {
    use picky_asn1_x509::{Certificate, PublicKey};
    let der = der_prefix(der).ok_or("not a DER SEQUENCE")?;
    let cert: Certificate =
        picky_asn1_der::from_bytes(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    match &cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
    {
        PublicKey::Rsa(rsa) => {
            let modulus = strip_leading_zeros(rsa.0.modulus.as_unsigned_bytes_be()).to_vec();
            Ok((format!("rsa{}", modulus.len() * 8), modulus))
        }
        PublicKey::Ec(point) => {
            let bytes = point.0.payload_view();
            // An uncompressed point: 0x04 ‖ x ‖ y.
            match bytes.split_first() {
                Some((4, xy)) if xy.len() % 2 == 0 && !xy.is_empty() => {
                    let size = xy.len() / 2;
                    let canonical = ecc_canonical(&xy[..size], &xy[size..], size)
                        .ok_or("malformed EC point")?;
                    Ok((ecc_name(size), canonical))
                }
                _ => Err("the EC public key is not an uncompressed point".to_owned()),
            }
        }
        _ => Err("the certificate's key is neither RSA nor EC".to_owned()),
    }
}

#[cfg(all(feature = "tpm", target_os = "linux"))]
fn ecc_name(coordinate_size: usize) -> String {
    match coordinate_size {
        32 => "ecc-p256".to_owned(),
        48 => "ecc-p384".to_owned(),
        66 => "ecc-p521".to_owned(),
        n => format!("ecc-{}", n * 8),
    }
}

/// The bytes of the DER TLV at the start of `bytes` (a SEQUENCE), without what follows.
#[cfg(all(feature = "tpm", target_os = "linux"))]
pub(super) fn der_prefix(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.first() != Some(&0x30) {
        return None;
    }
    let first = *bytes.get(1)?;
    let (header, length) = if first < 0x80 {
        (2usize, usize::from(first))
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let mut length = 0usize;
        for i in 0..count {
            length = (length << 8) | usize::from(*bytes.get(2 + i)?);
        }
        (2 + count, length)
    };
    bytes.get(..header.checked_add(length)?)
}
