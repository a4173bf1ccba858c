#!/usr/bin/env python3
"""Golden test vectors for Lapwing's License Activation Protocol (LAP), profile version 2.

This is an implementation of LAP that is independent of the Rust code: Python 3.11, the
standard library and the `cryptography` package (pip install cryptography) only. It writes

    tests/vectors/lap-v2.json       whole request/response exchanges, every intermediate value
    tests/vectors/primitives.json   known-answer tests for the primitives as LAP composes them

Usage:
    python3 tests/vectors/gen_vectors.py           (re)write both files
    python3 tests/vectors/gen_vectors.py --check   regenerate in memory; exit 1 if a file differs

Everything is deterministic: every key comes from SHA-256 of a fixed label, X25519, HKDF,
ChaCha20-Poly1305 and Ed25519 (RFC 8032) are deterministic, and the JSON is written with a
fixed key order. The only thing that depends on the environment is the `generator` string,
which names the installed `cryptography` version; `--check` says so when that is the only
difference.

What is implemented (see shared/LAP-PROFILE.md §1, §2, §5 and draft -04 §3.3, §3.4):

  request plaintext  = Version(1)=2 | Size(2 LE) | ClientTime(5 LE) | ClientBaseId(16)
                       | ClientAddOnId(16) | SKUId(16) | CurrentLicenseId(16) | Reserved(16 zero)
                       | ClientSeed                       (Size = whole plaintext length >= 89)
  client seed v1     = DecodedKey(16) | MachineHash(32) | NumCPUs(1) | NumCores(1)
                       | InstallNonce(16) | Room (n zero bytes)
  shared secret      = X25519(ephemeral secret, server X25519 public)      (must not be all zero)
  IKM                = ephemeral public | server X25519 public | server Ed25519 public | shared secret
  OKM                = HKDF-SHA512(salt absent = 64 zero bytes, IKM,
                       info = "56065c4d-d2e0-4ba9-bf9f-76f9159e2987-LAP-V02", L = 64)
  c2s key, s2c key   = OKM[0:32], OKM[32:64]
  request datagram   = ephemeral public (32) | ChaCha20-Poly1305(c2s, nonce 12 x 00, no AAD)
                       = ephemeral public | ciphertext | tag(16)
  response plaintext = Version(1)=2 | Size(2 LE) | ServerTime(5 LE) | ClientId(16) | SKUId(16)
                       | LicenseId(16) | ServerData           (Size = whole plaintext length >= 56)
  response datagram  = Ed25519 signature(64) over (ciphertext | tag) | ciphertext | tag(16)
  ServerData         = TLV v1 records: type(1) | length(2 LE) | value

UUIDs are their 16 RFC 4122 bytes in network order; times are 5-byte little-endian UNIX seconds.

Amplification arithmetic (profile §1): a request datagram is 32 + (88 + s) + 16 = 136 + s bytes
for a seed of s bytes, a response datagram is 64 + (56 + d) + 16 = 136 + d bytes for d bytes of
ServerData, so "response no longer than request" means d <= s. For seed v1 with n bytes of Room
(s = 66 + n) the largest ServerData is 66 + n bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import struct
import sys
import uuid
from pathlib import Path

import cryptography
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = Path(__file__).resolve().parent
LAP_FILE = HERE / "lap-v2.json"
PRIMITIVES_FILE = HERE / "primitives.json"
GENERATOR = f"tests/vectors/gen_vectors.py (Python cryptography {cryptography.__version__})"

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def hx(data: bytes) -> str:
    return data.hex()


def unhex(text: str) -> bytes:
    """Hex with optional spaces/colons/newlines, as constants are copied from the RFCs."""
    return bytes.fromhex("".join(c for c in text if c not in " :\n"))


def label_bytes(label: str) -> bytes:
    """32 deterministic bytes for a label: SHA-256("lapwing test vectors: " + label)."""
    return hashlib.sha256(b"lapwing test vectors: " + label.encode("ascii")).digest()


def le16(n: int) -> bytes:
    assert 0 <= n < 1 << 16
    return struct.pack("<H", n)


def le40(n: int) -> bytes:
    """A LAP time: 5-byte unsigned little-endian UNIX seconds."""
    assert 0 <= n < 1 << 40
    return n.to_bytes(5, "little")


def uuid_bytes(text: str) -> bytes:
    """RFC 4122 bytes, network order (uuid.UUID.bytes, never bytes_le)."""
    return uuid.UUID(text).bytes


NIL_UUID = "00000000-0000-0000-0000-000000000000"


# ---------------------------------------------------------------------------------------------
# X25519, written out per RFC 7748 §5 (used to check `cryptography` and for the §5.2 vectors)
# ---------------------------------------------------------------------------------------------

P25519 = 2**255 - 19
A24 = 121665


def x25519_decode_scalar(k: bytes) -> int:
    assert len(k) == 32
    b = bytearray(k)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return int.from_bytes(b, "little")


def x25519_clamp(k: bytes) -> bytes:
    return x25519_decode_scalar(k).to_bytes(32, "little")


def x25519_decode_u(u: bytes) -> int:
    """RFC 7748 §5: mask the most significant bit; non-canonical values (>= p) are accepted."""
    assert len(u) == 32
    b = bytearray(u)
    b[31] &= 127
    return int.from_bytes(b, "little")


def x25519_ladder(k: bytes, u: bytes) -> bytes:
    """The Montgomery ladder of RFC 7748 §5, in plain integers (not constant time)."""
    k_int = x25519_decode_scalar(k)
    x_1 = x25519_decode_u(u) % P25519
    x_2, z_2, x_3, z_3 = 1, 0, x_1, 1
    swap = 0
    for t in reversed(range(255)):
        k_t = (k_int >> t) & 1
        swap ^= k_t
        if swap:
            x_2, x_3 = x_3, x_2
            z_2, z_3 = z_3, z_2
        swap = k_t
        a = (x_2 + z_2) % P25519
        aa = a * a % P25519
        b = (x_2 - z_2) % P25519
        bb = b * b % P25519
        e = (aa - bb) % P25519
        c = (x_3 + z_3) % P25519
        d = (x_3 - z_3) % P25519
        da = d * a % P25519
        cb = c * b % P25519
        x_3 = (da + cb) ** 2 % P25519
        z_3 = x_1 * (da - cb) ** 2 % P25519
        x_2 = aa * bb % P25519
        z_2 = e * (aa + A24 * e) % P25519
    if swap:
        x_2, x_3 = x_3, x_2
        z_2, z_3 = z_3, z_2
    return (x_2 * pow(z_2, P25519 - 2, P25519) % P25519).to_bytes(32, "little")


X25519_BASE_U = (9).to_bytes(32, "little")


def x25519_public(secret: bytes) -> bytes:
    """Public key with `cryptography`, cross-checked against the ladder."""
    public = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )
    assert public == x25519_ladder(secret, X25519_BASE_U)
    return public


def x25519_shared(secret: bytes, peer_public: bytes) -> bytes:
    """Shared secret with `cryptography`, cross-checked against the ladder."""
    shared = X25519PrivateKey.from_private_bytes(secret).exchange(
        X25519PublicKey.from_public_bytes(peer_public)
    )
    assert shared == x25519_ladder(secret, peer_public)
    return shared


# ---------------------------------------------------------------------------------------------
# HKDF, written out per RFC 5869 with hmac/hashlib (cross-checked against `cryptography`)
# ---------------------------------------------------------------------------------------------


def hkdf_extract(hash_name: str, salt: bytes | None, ikm: bytes) -> bytes:
    """RFC 5869 §2.2. salt=None means "not provided": a string of HashLen zeros."""
    hash_len = hashlib.new(hash_name).digest_size
    if salt is None:
        salt = bytes(hash_len)
    return hmac.new(salt, ikm, hash_name).digest()


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 §2.3."""
    hash_len = hashlib.new(hash_name).digest_size
    assert length <= 255 * hash_len
    okm, t, counter = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([counter]), hash_name).digest()
        okm += t
        counter += 1
    return okm[:length]


CRYPTOGRAPHY_HASHES = {"sha256": hashes.SHA256, "sha512": hashes.SHA512}


def hkdf(hash_name: str, salt: bytes | None, ikm: bytes, info: bytes, length: int) -> tuple[bytes, bytes]:
    """(PRK, OKM) from the stdlib implementation; asserts `cryptography` agrees."""
    prk = hkdf_extract(hash_name, salt, ikm)
    okm = hkdf_expand(hash_name, prk, info, length)
    algorithm = CRYPTOGRAPHY_HASHES[hash_name]
    assert HKDF(algorithm=algorithm(), length=length, salt=salt, info=info).derive(ikm) == okm
    assert HKDFExpand(algorithm=algorithm(), length=length, info=info).derive(prk) == okm
    if hasattr(HKDF, "extract"):  # cryptography >= 47
        assert HKDF.extract(algorithm(), salt, ikm) == prk
    return prk, okm


# ---------------------------------------------------------------------------------------------
# LAP v2 (profile §1)
# ---------------------------------------------------------------------------------------------

LAP_VERSION = 2
LAP_HKDF_INFO = b"56065c4d-d2e0-4ba9-bf9f-76f9159e2987-LAP-V02"
LAP_NONCE = bytes(12)
REQUEST_HEADER_LEN = 1 + 2 + 5 + 16 * 5  # 88: everything before ClientSeed
RESPONSE_HEADER_LEN = 1 + 2 + 5 + 16 * 3  # 56: everything before ServerData
MIN_REQUEST_SIZE = REQUEST_HEADER_LEN + 1  # 89: the seed is never empty
MIN_RESPONSE_SIZE = RESPONSE_HEADER_LEN  # 56: ServerData may be empty
MAX_REQUEST_DATAGRAM = 1200
TAG_LEN = 16
REQUEST_OVERHEAD = 32 + REQUEST_HEADER_LEN + TAG_LEN  # 136 = request datagram - seed
RESPONSE_OVERHEAD = 64 + RESPONSE_HEADER_LEN + TAG_LEN  # 136 = response datagram - ServerData
assert (REQUEST_HEADER_LEN, RESPONSE_HEADER_LEN, REQUEST_OVERHEAD, RESPONSE_OVERHEAD) == (88, 56, 136, 136)
assert LAP_HKDF_INFO.decode("ascii") == "56065c4d-d2e0-4ba9-bf9f-76f9159e2987-LAP-V02"


def max_server_data_len(seed_len: int) -> int:
    """Largest ServerData whose response datagram is no longer than the request datagram."""
    return seed_len + REQUEST_OVERHEAD - RESPONSE_OVERHEAD  # == seed_len


def lap_keys(eph_public: bytes, server_x_public: bytes, server_ed_public: bytes, shared: bytes):
    """Profile §1 KDF. Returns (okm, c2s_key, s2c_key)."""
    assert shared != bytes(32), "all-zero X25519 output must be rejected"
    ikm = eph_public + server_x_public + server_ed_public + shared
    _prk, okm = hkdf("sha512", None, ikm, LAP_HKDF_INFO, 64)
    return okm, okm[:32], okm[32:]


def request_plaintext(
    client_time: int, base_id: str, addon_id: str, sku_id: str, current_license_id: str, seed: bytes
) -> bytes:
    assert len(seed) >= 1
    size = REQUEST_HEADER_LEN + len(seed)
    plaintext = (
        bytes([LAP_VERSION])
        + le16(size)
        + le40(client_time)
        + uuid_bytes(base_id)
        + uuid_bytes(addon_id)
        + uuid_bytes(sku_id)
        + uuid_bytes(current_license_id)
        + bytes(16)  # Reserved
        + seed
    )
    assert len(plaintext) == size
    return plaintext


def response_plaintext(server_time: int, client_id: str, sku_id: str, license_id: str, server_data: bytes) -> bytes:
    size = RESPONSE_HEADER_LEN + len(server_data)
    plaintext = (
        bytes([LAP_VERSION])
        + le16(size)
        + le40(server_time)
        + uuid_bytes(client_id)
        + uuid_bytes(sku_id)
        + uuid_bytes(license_id)
        + server_data
    )
    assert len(plaintext) == size
    return plaintext


# ---------------------------------------------------------------------------------------------
# Profile §2 (client seed v1) and §5 (ServerData TLV v1)
# ---------------------------------------------------------------------------------------------


def seed_v1(decoded_key: bytes, machine_hash: bytes, num_cpus: int, num_cores: int, install_nonce: bytes, room: int) -> bytes:
    assert len(decoded_key) == 16 and len(machine_hash) == 32 and len(install_nonce) == 16
    assert 0 <= num_cpus <= 255 and 0 <= num_cores <= 255 and room >= 0
    return decoded_key + machine_hash + bytes([num_cpus, num_cores]) + install_nonce + bytes(room)


TLV_NOT_AFTER, TLV_RENEW_AFTER, TLV_KIND, TLV_COMPLIANCE = 0x01, 0x02, 0x03, 0x04
TLV_FEATURES, TLV_NOTICE, TLV_ASSET_KEY = 0x05, 0x06, 0x07
KIND_PERPETUAL, KIND_TERM, KIND_SUBSCRIPTION, KIND_EVALUATION = 0, 1, 2, 3


def tlv(record_type: int, value: bytes) -> bytes:
    assert 0 <= record_type <= 0xFF
    return bytes([record_type]) + le16(len(value)) + value


def tlv_time(record_type: int, t: int) -> bytes:
    return tlv(record_type, le40(t))


def parse_server_data(data: bytes) -> list[tuple[int, bytes]]:
    """Profile §5 parser, as strict as the profile: asserts that `data` is valid."""
    records, seen, i = [], set(), 0
    fixed_len = {TLV_NOT_AFTER: 5, TLV_RENEW_AFTER: 5, TLV_KIND: 1, TLV_COMPLIANCE: 1}
    while i < len(data):
        assert i + 3 <= len(data), "record header runs past the end"
        record_type, length = data[i], int.from_bytes(data[i + 1 : i + 3], "little")
        value = data[i + 3 : i + 3 + length]
        assert len(value) == length, "record runs past the end"
        if record_type <= 0x07:
            assert record_type not in seen, "duplicate record"
            seen.add(record_type)
        if record_type in fixed_len:
            assert length == fixed_len[record_type], "wrong length"
        if record_type == TLV_KIND:
            assert value[0] <= 3
        if record_type == TLV_COMPLIANCE:
            assert value[0] <= 1
        if record_type in (TLV_FEATURES, TLV_NOTICE):
            value.decode("utf-8")
        if record_type == TLV_NOTICE:
            assert length <= 200
        records.append((record_type, value))
        i += 3 + length
    return records


# ---------------------------------------------------------------------------------------------
# The fixed server and the cases
# ---------------------------------------------------------------------------------------------

SERVER_X25519_SECRET = label_bytes("server x25519 secret")
SERVER_ED25519_SEED = label_bytes("server ed25519 seed")

T0 = 1795000000  # 2026-11-18T11:06:40Z

SKU_STUDIO = "6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11"  # the profile §6 manifest example
SKU_STUDIO_EXPORT_ADDON = "d1e5a7c2-04b3-4e9f-8a61-5c2f0b9d7e34"
BASE_ID = "3f2b8c1e-6a4d-4e7f-9b21-0c5d8e7a6f13"
ADDON_ID = "a7c41e09-58d2-4b3f-8e6a-91f0c3d2b845"
LICENSE_PRO = "0e8f3a21-7b6c-4d59-a1e4-2c9b8d7f6e50"
LICENSE_EVAL = "5c2d9e71-3a4b-4f08-b6c1-e7d8f9a0b132"
LICENSE_ADDON = "9b7a6c5d-4e3f-4a21-8b09-f1e2d3c4b5a6"
LICENSE_ADDON_PREVIOUS = "8a6b5c4d-3e2f-4109-9a8b-7c6d5e4f3a21"
LICENSE_MIN = "12345678-9abc-4def-8123-456789abcdef"
LICENSE_RENEWED = "f4e3d2c1-b0a9-4876-9543-210fedcba987"
LICENSE_MAX = "77e1c0de-2b3a-4c5d-9e6f-708192a3b4c5"

DAY = 86400

# Same machine for all cases (MachineHash here is opaque 32 bytes, not a profile §3 vector).
MACHINE_HASH = label_bytes("machine hash")
INSTALL_NONCE = label_bytes("install nonce")[:16]
DECODED_KEY_PRO = label_bytes("decoded license key: pro")[:16]
DECODED_KEY_ADDON = label_bytes("decoded license key: export add-on")[:16]


def case_definitions() -> list[dict]:
    """Inputs of each case. Times: ServerTime = ClientTime + a few seconds (within 30 s)."""
    cases = []

    t = T0
    cases.append(
        dict(
            name="base-product-with-key",
            client_time=t,
            base_id=BASE_ID,
            addon_id=NIL_UUID,
            sku_id=SKU_STUDIO,
            current_license_id=NIL_UUID,
            seed=seed_v1(DECODED_KEY_PRO, MACHINE_HASH, 1, 8, INSTALL_NONCE, room=128),
            server_time=t + 1,
            license_id=LICENSE_PRO,
            server_data=(
                tlv_time(TLV_NOT_AFTER, t + 1 + 365 * DAY)
                + tlv_time(TLV_RENEW_AFTER, t + 1 + 30 * DAY)
                + tlv(TLV_KIND, bytes([KIND_TERM]))
                + tlv(TLV_COMPLIANCE, bytes([0]))
                + tlv(TLV_FEATURES, "pro,export".encode("utf-8"))
                + tlv(TLV_NOTICE, "Licensed to Acme Corp. — support until 2027-11-18.".encode("utf-8"))
            ),
        )
    )

    t = T0 + 3600
    cases.append(
        dict(
            name="evaluation-no-key",
            client_time=t,
            base_id=BASE_ID,
            addon_id=NIL_UUID,
            sku_id=SKU_STUDIO,
            current_license_id=NIL_UUID,
            seed=seed_v1(bytes(16), MACHINE_HASH, 1, 8, INSTALL_NONCE, room=128),
            server_time=t + 2,
            license_id=LICENSE_EVAL,
            server_data=(
                tlv(TLV_KIND, bytes([KIND_EVALUATION]))  # order of records is free
                + tlv_time(TLV_NOT_AFTER, t + 2 + 30 * DAY)
            ),
        )
    )

    t = T0 + 7200
    cases.append(
        dict(
            name="addon",
            client_time=t,
            base_id=BASE_ID,
            addon_id=ADDON_ID,
            sku_id=SKU_STUDIO_EXPORT_ADDON,
            current_license_id=LICENSE_ADDON_PREVIOUS,
            seed=seed_v1(DECODED_KEY_ADDON, MACHINE_HASH, 2, 24, INSTALL_NONCE, room=128),
            server_time=t - 3,  # the server's clock may be behind the client's
            license_id=LICENSE_ADDON,
            server_data=(
                tlv_time(TLV_NOT_AFTER, t - 3 + 31 * DAY)
                + tlv_time(TLV_RENEW_AFTER, t - 3 + 7 * DAY)
                + tlv(TLV_KIND, bytes([KIND_SUBSCRIPTION]))
                + tlv(TLV_COMPLIANCE, bytes([1]))
                + tlv(TLV_FEATURES, b"export-pdf,export-svg")
            ),
        )
    )

    t = T0 + 10800
    cases.append(
        dict(
            name="empty-server-data",
            client_time=t,
            base_id=BASE_ID,
            addon_id=NIL_UUID,
            sku_id=SKU_STUDIO,
            current_license_id=NIL_UUID,
            seed=b"\x5a",  # draft minimum (1 byte); not a profile seed v1
            server_time=t,
            license_id=LICENSE_MIN,
            server_data=b"",
        )
    )

    t = T0 + 180 * DAY
    cases.append(
        dict(
            name="renewal-with-vendor-records",
            client_time=t,
            base_id=BASE_ID,
            addon_id=NIL_UUID,
            sku_id=SKU_STUDIO,
            current_license_id=LICENSE_PRO,
            seed=seed_v1(DECODED_KEY_PRO, MACHINE_HASH, 1, 8, INSTALL_NONCE, room=128),
            server_time=t + 5,
            license_id=LICENSE_RENEWED,
            server_data=(
                tlv_time(TLV_NOT_AFTER, t + 5 + 365 * DAY)
                + tlv_time(TLV_RENEW_AFTER, t + 5 + 180 * DAY)
                + tlv(TLV_KIND, bytes([KIND_SUBSCRIPTION]))
                + tlv(0x10, b"reserved: ignore me")  # reserved 0x08-0x7F: ignored
                + tlv(TLV_ASSET_KEY, label_bytes("asset key"))
                + tlv(0x80, b"\x01vendor-blob\x00\xff")  # vendor 0x80-0xFF: kept, handed on
            ),
        )
    )

    t = T0 + 200 * DAY
    max_seed_len = MAX_REQUEST_DATAGRAM - REQUEST_OVERHEAD  # 1064
    room = max_seed_len - 66  # 998
    head = (
        tlv_time(TLV_NOT_AFTER, t + 4 + 365 * DAY)
        + tlv_time(TLV_RENEW_AFTER, t + 4 + 90 * DAY)
        + tlv(TLV_KIND, bytes([KIND_PERPETUAL]))
        + tlv(TLV_ASSET_KEY, label_bytes("asset key: max"))
    )
    filler_len = max_server_data_len(max_seed_len) - len(head) - 3
    filler = bytes((i * 7 + 3) & 0xFF for i in range(filler_len))
    cases.append(
        dict(
            name="max-size-request",
            client_time=t,
            base_id=BASE_ID,
            addon_id=NIL_UUID,
            sku_id=SKU_STUDIO,
            current_license_id=LICENSE_RENEWED,
            seed=seed_v1(DECODED_KEY_PRO, MACHINE_HASH, 255, 255, INSTALL_NONCE, room=room),
            server_time=t + 4,
            license_id=LICENSE_MAX,
            server_data=head + tlv(0xFE, filler),
        )
    )
    return cases


def build_case(c: dict, server: dict) -> dict:
    name = c["name"]

    # --- client: request -----------------------------------------------------------------
    eph_secret = label_bytes(f"ephemeral x25519 secret: {name}")
    # Given to X25519 as-is: make sure clamping actually changes it, so it is exercised.
    assert x25519_clamp(eph_secret) != eph_secret
    eph_public = x25519_public(eph_secret)
    shared = x25519_shared(eph_secret, server["x25519_public"])
    okm, c2s, s2c = lap_keys(eph_public, server["x25519_public"], server["ed25519_public"], shared)

    req_pt = request_plaintext(
        c["client_time"], c["base_id"], c["addon_id"], c["sku_id"], c["current_license_id"], c["seed"]
    )
    req_datagram = eph_public + ChaCha20Poly1305(c2s).encrypt(LAP_NONCE, req_pt, None)
    assert len(req_datagram) == REQUEST_OVERHEAD + len(c["seed"]) <= MAX_REQUEST_DATAGRAM

    # --- server: validate the request (draft §3.4 with the profile's errata), respond -----
    srv_shared = x25519_shared(server["x25519_secret"], req_datagram[:32])
    assert srv_shared == shared and srv_shared != bytes(32)
    _, srv_c2s, srv_s2c = lap_keys(req_datagram[:32], server["x25519_public"], server["ed25519_public"], srv_shared)
    got = ChaCha20Poly1305(srv_c2s).decrypt(LAP_NONCE, req_datagram[32:], None)
    assert got == req_pt
    assert got[0] == LAP_VERSION
    size = int.from_bytes(got[1:3], "little")
    assert size == len(got) >= MIN_REQUEST_SIZE
    assert got[72:88] == bytes(16)  # Reserved
    base_id, addon_id = uuid.UUID(bytes=got[8:24]), uuid.UUID(bytes=got[24:40])
    client_id = str(addon_id if addon_id.int != 0 else base_id)
    assert uuid.UUID(bytes=got[40:56]) == uuid.UUID(c["sku_id"])

    parse_server_data(c["server_data"])
    resp_pt = response_plaintext(c["server_time"], client_id, c["sku_id"], c["license_id"], c["server_data"])
    sealed = ChaCha20Poly1305(srv_s2c).encrypt(LAP_NONCE, resp_pt, None)
    signature = server["ed25519_key"].sign(sealed)
    resp_datagram = signature + sealed
    assert len(resp_datagram) == RESPONSE_OVERHEAD + len(c["server_data"])
    assert len(c["server_data"]) <= max_server_data_len(len(c["seed"]))
    assert len(resp_datagram) <= len(req_datagram), "amplification rule"

    # --- client: validate the response ---------------------------------------------------
    Ed25519PublicKey.from_public_bytes(server["ed25519_public"]).verify(resp_datagram[:64], resp_datagram[64:])
    got = ChaCha20Poly1305(s2c).decrypt(LAP_NONCE, resp_datagram[64:], None)
    assert got == resp_pt and got[0] == LAP_VERSION
    assert int.from_bytes(got[1:3], "little") == len(got) >= MIN_RESPONSE_SIZE
    expected_client_id = c["addon_id"] if c["addon_id"] != NIL_UUID else c["base_id"]
    assert uuid.UUID(bytes=got[8:24]) == uuid.UUID(expected_client_id)
    assert uuid.UUID(bytes=got[24:40]) == uuid.UUID(c["sku_id"])
    assert uuid.UUID(bytes=got[40:56]).int != 0
    assert got[56:] == c["server_data"]
    # A tampered response must fail the signature check.
    try:
        Ed25519PublicKey.from_public_bytes(server["ed25519_public"]).verify(
            resp_datagram[:64], resp_datagram[64:-1] + bytes([resp_datagram[-1] ^ 1])
        )
        raise AssertionError("tampered response verified")
    except InvalidSignature:
        pass

    return {
        "name": name,
        "request": {
            "client_time": c["client_time"],
            "client_base_id": c["base_id"],
            "client_addon_id": c["addon_id"],
            "sku_id": c["sku_id"],
            "current_license_id": c["current_license_id"],
            "client_seed": hx(c["seed"]),
            "ephemeral_secret": hx(eph_secret),
            "ephemeral_public": hx(eph_public),
            "shared_secret": hx(shared),
            "okm": hx(okm),
            "c2s_key": hx(c2s),
            "s2c_key": hx(s2c),
            "plaintext": hx(req_pt),
            "datagram": hx(req_datagram),
        },
        "response": {
            "server_time": c["server_time"],
            "client_id": expected_client_id,
            "sku_id": c["sku_id"],
            "license_id": c["license_id"],
            "server_data": hx(c["server_data"]),
            "plaintext": hx(resp_pt),
            "datagram": hx(resp_datagram),
        },
    }


LAP_DESCRIPTION = (
    "Golden vectors for the License Activation Protocol as fixed by Lapwing's profile "
    "(shared/LAP-PROFILE.md sections 1, 2, 5 over draft-lorlacks-license-activation-protocol-04 "
    "sections 3.3, 3.4): Version 2; shared_secret = X25519(ephemeral_secret, server x25519_public) "
    "with the secrets given unclamped (X25519 clamps); okm = HKDF-SHA512(salt absent = 64 zero bytes, "
    "IKM = ephemeral_public | server x25519_public | server ed25519_public | shared_secret, "
    "info = ASCII '56065c4d-d2e0-4ba9-bf9f-76f9159e2987-LAP-V02', L = 64); c2s_key = okm[0:32], "
    "s2c_key = okm[32:64]; ChaCha20-Poly1305 with a 12-byte zero nonce and no AAD; request datagram = "
    "ephemeral_public | ciphertext | tag; response datagram = Ed25519(ed25519_seed) signature over "
    "(ciphertext | tag) | ciphertext | tag. Integers little-endian, times 5 bytes, UUIDs in RFC 4122 "
    "network byte order. client_seed is profile seed v1 (DecodedKey 16 | MachineHash 32 | NumCPUs 1 | "
    "NumCores 1 | InstallNonce 16 | Room n zero bytes; MachineHash is opaque test bytes) except in "
    "empty-server-data, whose 1-byte seed is the draft's minimum. server_data is profile TLV v1. "
    "Every response datagram is no longer than its request datagram (ServerData length <= seed length)."
)


def build_lap() -> dict:
    ed_key = Ed25519PrivateKey.from_private_bytes(SERVER_ED25519_SEED)
    server = {
        "x25519_secret": SERVER_X25519_SECRET,
        "x25519_public": x25519_public(SERVER_X25519_SECRET),
        "ed25519_key": ed_key,
        "ed25519_public": ed_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
    }
    assert x25519_clamp(SERVER_X25519_SECRET) != SERVER_X25519_SECRET
    cases = [build_case(c, server) for c in case_definitions()]
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names)
    by_name = {c["name"]: c for c in cases}
    # The two size extremes asked for.
    assert len(unhex(by_name["empty-server-data"]["request"]["plaintext"])) == MIN_REQUEST_SIZE
    assert len(unhex(by_name["empty-server-data"]["response"]["plaintext"])) == MIN_RESPONSE_SIZE
    max_case = by_name["max-size-request"]
    assert len(unhex(max_case["request"]["datagram"])) == MAX_REQUEST_DATAGRAM
    assert len(unhex(max_case["response"]["datagram"])) == MAX_REQUEST_DATAGRAM
    # Ephemeral keys differ per case.
    assert len({c["request"]["ephemeral_secret"] for c in cases}) == len(cases)
    return {
        "description": LAP_DESCRIPTION,
        "generator": GENERATOR,
        "server": {
            "x25519_secret": hx(server["x25519_secret"]),
            "x25519_public": hx(server["x25519_public"]),
            "ed25519_seed": hx(SERVER_ED25519_SEED),
            "ed25519_public": hx(server["ed25519_public"]),
        },
        "cases": cases,
    }


# ---------------------------------------------------------------------------------------------
# Primitive known-answer tests. Every RFC constant below is checked before it is written.
# ---------------------------------------------------------------------------------------------


def x25519_kats() -> dict:
    single = [
        {
            "source": "RFC 7748 section 5.2, first single-iteration vector",
            "scalar": "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "u": "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "output": "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        },
        {
            "source": "RFC 7748 section 5.2, second single-iteration vector (u has its top bit set: it must be masked)",
            "scalar": "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "u": "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "output": "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        },
    ]
    for v in single:
        k, u, out = unhex(v["scalar"]), unhex(v["u"]), unhex(v["output"])
        assert x25519_ladder(k, u) == out, v["source"]
        # cryptography takes any 32 bytes as a public key (and masks the top bit itself).
        assert X25519PrivateKey.from_private_bytes(k).exchange(X25519PublicKey.from_public_bytes(u)) == out

    dh = {
        "source": "RFC 7748 section 6.1",
        "alice_private": "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        "alice_public": "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
        "bob_private": "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        "bob_public": "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
        "shared_secret": "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
    }
    a_priv, b_priv = unhex(dh["alice_private"]), unhex(dh["bob_private"])
    assert x25519_public(a_priv) == unhex(dh["alice_public"])
    assert x25519_public(b_priv) == unhex(dh["bob_public"])
    assert x25519_shared(a_priv, unhex(dh["bob_public"])) == unhex(dh["shared_secret"])
    assert x25519_shared(b_priv, unhex(dh["alice_public"])) == unhex(dh["shared_secret"])
    return {"single_iteration": single, "diffie_hellman": [dh]}


def _u(n: int, top_bit: bool = False) -> bytes:
    b = bytearray(n.to_bytes(32, "little"))
    if top_bit:
        b[31] |= 0x80
    return bytes(b)


ORDER8_A = int.from_bytes(unhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), "little")
ORDER8_B = int.from_bytes(unhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"), "little")

# (u, what it is). All must give an all-zero X25519 output for every scalar (RFC 7748 decoding).
LOW_ORDER_CANDIDATES = [
    (_u(0), "0: the point of order 2 (and the encoding of the point at infinity)"),
    (_u(1), "1: a point of order 4"),
    (_u(ORDER8_A), "a point of order 8"),
    (_u(ORDER8_B), "the other point of order 8"),
    (_u(P25519 - 1), "p-1 (= -1): a point of order 4 on the twist"),
    (_u(P25519), "p: non-canonical encoding of 0"),
    (_u(P25519 + 1), "p+1: non-canonical encoding of 1"),
    (_u(0, True), "0 with bit 255 set (masked away)"),
    (_u(1, True), "1 with bit 255 set (masked away)"),
    (_u(ORDER8_A, True), "first order-8 point with bit 255 set (masked away)"),
    (_u(ORDER8_B, True), "second order-8 point with bit 255 set (masked away)"),
    (_u(P25519 - 1, True), "p-1 with bit 255 set (masked away)"),
    (_u(P25519, True), "p with bit 255 set (masked away)"),
    (_u(P25519 + 1, True), "p+1 with bit 255 set (masked away)"),
]

# Entries of older blocklists meant for implementations that do NOT mask bit 255 (they read
# u + p or u + 2p). Under RFC 7748 decoding they are ordinary points, so they are left out.
NOT_LOW_ORDER_UNDER_RFC7748 = [
    unhex("cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880"),
    unhex("4c9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7"),
    unhex("d9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    unhex("daffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    unhex("dbffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
]

LOW_ORDER_TEST_SCALARS = [
    label_bytes("low-order scalar 1"),
    label_bytes("low-order scalar 2"),
    bytes(32),
    b"\xff" * 32,
]


def x25519_low_order() -> list[dict]:
    out = []
    for u, what in LOW_ORDER_CANDIDATES:
        if all(x25519_ladder(k, u) == bytes(32) for k in LOW_ORDER_TEST_SCALARS):
            out.append({"u": hx(u), "point": what})
            # cryptography (OpenSSL) refuses an all-zero result itself.
            try:
                X25519PrivateKey.from_private_bytes(LOW_ORDER_TEST_SCALARS[0]).exchange(
                    X25519PublicKey.from_public_bytes(u)
                )
                raise AssertionError(f"cryptography accepted low-order u {hx(u)}")
            except ValueError:
                pass
    assert len(out) == len(LOW_ORDER_CANDIDATES), "every candidate listed is expected to be low order"
    for u in NOT_LOW_ORDER_UNDER_RFC7748:
        assert x25519_ladder(LOW_ORDER_TEST_SCALARS[0], u) != bytes(32)
    return out


def ed25519_kats() -> list[dict]:
    tests = [
        {
            "source": "RFC 8032 section 7.1, TEST 1",
            "secret": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "public": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "message": "",
            "signature": "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        },
        {
            "source": "RFC 8032 section 7.1, TEST 2",
            "secret": "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "public": "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "message": "72",
            "signature": "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        },
        {
            "source": "RFC 8032 section 7.1, TEST 3",
            "secret": "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "public": "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "message": "af82",
            "signature": "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        },
    ]
    for v in tests:
        key = Ed25519PrivateKey.from_private_bytes(unhex(v["secret"]))
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        assert public == unhex(v["public"]), v["source"]
        assert key.sign(unhex(v["message"])) == unhex(v["signature"]), v["source"]
        Ed25519PublicKey.from_public_bytes(public).verify(unhex(v["signature"]), unhex(v["message"]))
    return tests


def chacha20poly1305_kats() -> list[dict]:
    rfc = {
        "source": "RFC 8439 section 2.8.2",
        "key": "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "nonce": "070000004041424344454647",
        "aad": "50515253c0c1c2c3c4c5c6c7",
        "plaintext": hx(
            b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
            b"for the future, sunscreen would be it."
        ),
        "ciphertext": hx(
            unhex(
                """
                d3 1a 8d 34 64 8e 60 db 7b 86 af bc 53 ef 7e c2
                a4 ad ed 51 29 6e 08 fe a9 e2 b5 a7 36 ee 62 d6
                3d be a4 5e 8c a9 67 12 82 fa fb 69 da 92 72 8b
                1a 71 de 0a 9e 06 0b 29 05 d6 a5 b6 7e cd 3b 36
                92 dd bd 7f 2d 77 8b 8c 98 03 ae e3 28 09 1b 58
                fa b3 24 e4 fa d6 75 94 55 85 80 8b 48 31 d7 bc
                3f f4 de f0 8e 4b 7a 9d e5 76 d2 65 86 ce c6 4b
                61 16
                """
            )
        ),
        "tag": hx(unhex("1a:e1:0b:59:4f:09:e2:6a:7e:90:2e:cb:d0:60:06:91")),
    }
    sealed = ChaCha20Poly1305(unhex(rfc["key"])).encrypt(unhex(rfc["nonce"]), unhex(rfc["plaintext"]), unhex(rfc["aad"]))
    assert sealed == unhex(rfc["ciphertext"]) + unhex(rfc["tag"]), rfc["source"]

    out = [rfc]
    lap_shaped = [
        ("LAP shape (zero nonce, no AAD), empty plaintext: generated with cryptography", b""),
        (
            "LAP shape (zero nonce, no AAD), 89-byte plaintext: generated with cryptography",
            bytes([LAP_VERSION]) + le16(89) + bytes(range(86)),
        ),
    ]
    for i, (source, plaintext) in enumerate(lap_shaped, 1):
        key = label_bytes(f"chacha20poly1305 lap-shaped key {i}")
        sealed = ChaCha20Poly1305(key).encrypt(LAP_NONCE, plaintext, None)
        ciphertext, tag = sealed[:-TAG_LEN], sealed[-TAG_LEN:]
        assert ChaCha20Poly1305(key).decrypt(LAP_NONCE, sealed, b"") == plaintext  # None == empty AAD
        try:
            ChaCha20Poly1305(key).decrypt(LAP_NONCE, ciphertext + bytes([tag[0] ^ 1]) + tag[1:], None)
            raise AssertionError("bad tag accepted")
        except InvalidTag:
            pass
        out.append(
            {
                "source": source,
                "key": hx(key),
                "nonce": hx(LAP_NONCE),
                "aad": "",
                "plaintext": hx(plaintext),
                "ciphertext": hx(ciphertext),
                "tag": hx(tag),
            }
        )
    return out


def hkdf_sha256_kats() -> list[dict]:
    tests = [
        {
            "source": "RFC 5869 appendix A.1, test case 1",
            "ikm": "0b" * 22,
            "salt": "000102030405060708090a0b0c",
            "info": "f0f1f2f3f4f5f6f7f8f9",
            "L": 42,
            "prk": "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            "okm": "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        },
        {
            "source": "RFC 5869 appendix A.2, test case 2",
            "ikm": hx(bytes(range(0x00, 0x50))),
            "salt": hx(bytes(range(0x60, 0xB0))),
            "info": hx(bytes(range(0xB0, 0x100))),
            "L": 82,
            "prk": "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
            "okm": "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
            "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
            "cc30c58179ec3e87c14c01d5c1f3434f1d87",
        },
        {
            "source": "RFC 5869 appendix A.3, test case 3 (salt and info of zero length)",
            "ikm": "0b" * 22,
            "salt": "",
            "info": "",
            "L": 42,
            "prk": "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            "okm": "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        },
    ]
    for v in tests:
        prk, okm = hkdf("sha256", unhex(v["salt"]), unhex(v["ikm"]), unhex(v["info"]), v["L"])
        assert prk == unhex(v["prk"]) and okm == unhex(v["okm"]), v["source"]
    # Test case 3 again with the salt absent: HashLen zeros, which HMAC pads to the same key.
    assert hkdf("sha256", None, unhex(tests[2]["ikm"]), b"", 42)[1] == unhex(tests[2]["okm"])
    return tests


def hkdf_sha512_kats() -> list[dict]:
    inputs = [
        (
            "LAP shape: salt absent (64 zero bytes), 128-byte IKM, LAP info string, L = 64; stdlib hmac, checked with cryptography",
            None,
            bytes(range(128)),
            LAP_HKDF_INFO,
            64,
        ),
        (
            "salt of zero length (same PRK as salt absent), empty info, L = 64; stdlib hmac, checked with cryptography",
            b"",
            b"\x0b" * 22,
            b"",
            64,
        ),
        (
            "RFC 5869 test case 2 inputs with SHA-512, L = 150 (three blocks, the last partial); stdlib hmac, checked with cryptography",
            bytes(range(0x60, 0xB0)),
            bytes(range(0x00, 0x50)),
            bytes(range(0xB0, 0x100)),
            150,
        ),
        (
            "salt absent, 22-byte IKM, empty info, L = 64; stdlib hmac, checked with cryptography",
            None,
            b"\x0b" * 22,
            b"",
            64,
        ),
    ]
    out = []
    for source, salt, ikm, info, length in inputs:
        prk, okm = hkdf("sha512", salt, ikm, info, length)
        out.append(
            {
                "source": source,
                "ikm": hx(ikm),
                "salt": None if salt is None else hx(salt),
                "info": hx(info),
                "L": length,
                "prk": hx(prk),
                "okm": hx(okm),
            }
        )
    # Salt absent, salt empty and salt = 64 zero bytes are the same thing.
    assert out[1]["prk"] == out[3]["prk"] == hx(hkdf_extract("sha512", bytes(64), b"\x0b" * 22))
    return out


def build_primitives() -> dict:
    return {
        "description": (
            "Known-answer tests for the primitives LAP composes: X25519 (RFC 7748; secrets unclamped, "
            "u with bit 255 masked), low-order u-coordinates whose X25519 output is all zero for any "
            "scalar (to be rejected per LAP), Ed25519 (RFC 8032, secret = 32-byte seed), "
            "ChaCha20-Poly1305 (RFC 8439; ciphertext and tag given apart, the wire carries "
            "ciphertext | tag), HKDF (RFC 5869; 'L' is the output length in bytes, 'salt': null means "
            "absent = HashLen zero bytes). All byte strings are lowercase hex."
        ),
        "generator": GENERATOR,
        "x25519": x25519_kats(),
        "x25519_low_order": x25519_low_order(),
        "ed25519": ed25519_kats(),
        "chacha20poly1305": chacha20poly1305_kats(),
        "hkdf_sha256": hkdf_sha256_kats(),
        "hkdf_sha512": hkdf_sha512_kats(),
    }


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def render(obj: dict) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=True) + "\n"


def generate() -> dict[Path, str]:
    return {PRIMITIVES_FILE: render(build_primitives()), LAP_FILE: render(build_lap())}


def only_generator_differs(on_disk: str, fresh: str) -> bool:
    try:
        a, b = json.loads(on_disk), json.loads(fresh)
    except ValueError:
        return False
    a.pop("generator", None)
    b.pop("generator", None)
    return a == b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the files on disk differ")
    args = parser.parse_args()

    files = generate()
    if not args.check:
        for path, text in files.items():
            path.write_text(text, encoding="ascii", newline="\n")
            print(f"wrote {path.relative_to(HERE.parent.parent)}")
        return 0

    failed = False
    for path, text in files.items():
        rel = path.relative_to(HERE.parent.parent)
        if not path.exists():
            print(f"{rel}: missing", file=sys.stderr)
            failed = True
            continue
        on_disk = path.read_text(encoding="ascii")
        if on_disk == text:
            print(f"{rel}: up to date")
        elif only_generator_differs(on_disk, text):
            print(
                f"{rel}: vectors identical, but the generator string differs "
                f"(installed: {GENERATOR!r}); regenerate or install the recorded version",
                file=sys.stderr,
            )
            failed = True
        else:
            print(f"{rel}: differs from what the script generates", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
