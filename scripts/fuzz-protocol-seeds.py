#!/usr/bin/env python3
"""Seed corpus for scripts/fuzz-protocol.sh: a link's plaintext stream as it travels inside TLS,
[u32 big-endian length][message] records (Sources/Protocol/SecureLink.swift, MessageCodec.swift),
including a whole OFFER → CHUNK… → COMMIT upload and the framing's edge cases."""
import hashlib, json, os, struct, sys

TYPES = {"HELLO": 1, "WELCOME": 2, "REFUSED": 3, "OFFER": 4, "RESUME": 5, "CHUNK": 6, "ACK": 7,
         "COMMIT": 8, "COMMITTED": 9, "MERGED": 10, "EVAL": 11, "ERROR": 12, "HEARTBEAT": 13,
         "EVALUATED": 14, "SECURE_KEY": 15, "SECURE_KEYS": 16, "SECURE_BOUNDS": 17, "SECURE_SCALE": 18,
         "REVEAL_REQUEST": 19, "REVEAL": 20, "MERGE_FAILED": 21}

def message(kind, header, payload=b""):
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">HHI", 1, TYPES[kind], len(h)) + h + payload

def records(*messages):
    return b"".join(struct.pack(">I", len(m)) + m for m in messages)

# A SECURE_KEY whose certificate is PEM-shaped (base64 of a DER SEQUENCE header), so mutations
# reach OpenSSL's PEM and X.509 parsers.
SECURE_KEY = {"round": 1, "merge": "m", "agent": "a", "publicKey": "A" * 43 + "=",
              "certificate": "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIQ\n-----END CERTIFICATE-----\n",
              "signature": "MEUCIQ" + "A" * 90}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
data = bytes((i * 131 + 7) % 251 for i in range(3000))
sha = hashlib.sha256(data).hexdigest()
upload = [message("OFFER", {"transferID": "t", "name": "f.bin", "size": len(data), "sha256": sha, "attributes": {}})]
for offset in range(0, len(data), 1000):
    upload.append(message("CHUNK", {"transferID": "t", "offset": offset}, data[offset:offset + 1000]))
upload.append(message("COMMIT", {"transferID": "t", "sha256": sha}))
seeds = {
    "upload": records(*upload),
    "hello": records(message("HELLO", {"name": "a", "baseFingerprint": "b", "protocolVersion": 1, "round": 1, "attributes": {}})),
    "welcome": records(message("WELCOME", {"round": 1, "wantedStatistics": ["gram"], "methods": ["regmean"], "attributes": {}})),
    "eval": records(message("EVAL", {"round": 1, "method": "regmean", "metrics": {"accuracy": 0.5}})),
    "ack": records(message("ACK", {"transferID": "t", "durableOffset": 5})),
    "heartbeat": records(message("HEARTBEAT", {})),
    "evaluated": records(message("EVALUATED", {"round": 1, "method": "regmean"})),
    # ERROR with and without the optional `method` (the merged model a failed evaluation concerns).
    "error": records(message("ERROR", {"code": "eval_failed", "message": "nan loss"})),
    "error-method": records(message("ERROR", {"code": "eval_failed", "message": "nan loss", "method": "regmean"})),
    # Secure summation (issue 13): a key with a PEM-shaped certificate, the relayed list, bounds,
    # scale, and a dropout's request and reveal.
    "secure-key": records(message("SECURE_KEY", SECURE_KEY)),
    "secure-keys": records(message("SECURE_KEYS", {"round": 1, "merge": "m", "keys": [SECURE_KEY, dict(SECURE_KEY, agent="b")]})),
    "secure-bounds": records(message("SECURE_BOUNDS", {"round": 1, "merge": "m", "layoutDigest": "ab" * 32, "boundExponents": [3, None, -7]})),
    "secure-scale": records(message("SECURE_SCALE", {"round": 1, "merge": "m", "layoutDigest": "ab" * 32, "agents": ["a", "b", "c"],
                                                     "fractionBits": [57, 96, 67], "boundExponents": [3, None, -7]})),
    "reveal": records(message("REVEAL_REQUEST", {"round": 1, "merge": "m", "dropped": ["b"]}),
                      message("REVEAL", {"round": 1, "merge": "m", "agent": "a", "seeds": {"b": "0f" * 32}})),
    # A merge the aggregator gave up (its members stop waiting).
    "merge-failed": records(message("MERGE_FAILED", {"round": 1, "merge": "m", "reason": "fewer than min_agents (3) members remain"})),
    # Framing edge cases: several messages back to back, an empty record, a length above any
    # limit (ends the stream), a record cut short at the end.
    "stream": records(message("HEARTBEAT", {}), message("ACK", {"transferID": "t", "durableOffset": 5}),
                      message("ERROR", {"code": "malformed", "message": "x", "method": None})),
    "empty-record": struct.pack(">I", 0) + records(message("HEARTBEAT", {})),
    "oversize-length": struct.pack(">I", 0xFFFFFFF0) + b"{}",
    "truncated": records(message("HEARTBEAT", {}))[:-3],
}
for name, blob in seeds.items():
    with open(os.path.join(out, "seed-" + name), "wb") as f:
        f.write(blob)
