#!/usr/bin/env python3
"""Regenerates interop.json: keys the Rust test crates cannot sign with (RSA 8192, which the rsa
crate refuses, and P-521), their public JWKs, and tokens signed with them by python3-cryptography
(OpenSSL), independently of the code under test. The tokens carry no `exp`, so they stay valid.

    python3 make_interop.py [output-file]      # default: interop.json next to this script
"""
import base64, json, os, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'interop.json')
ISSUER = 'https://issuer.example'


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode()


def uint(value, size):
    return value.to_bytes(size, 'big')


def segment(document):
    return b64(json.dumps(document, separators=(',', ':')).encode())


def signed(alg, kid, claims, sign):
    signing_input = segment({'alg': alg, 'typ': 'JWT', 'kid': kid}) + '.' + segment(claims)
    return signing_input + '.' + b64(sign(signing_input.encode()))


def claims(sub):
    return {'iss': ISSUER, 'aud': 'api', 'sub': sub, 'iat': 1700000000}


HASHES = {'256': hashes.SHA256(), '384': hashes.SHA384(), '512': hashes.SHA512()}

rsa8192 = rsa.generate_private_key(public_exponent=65537, key_size=8192)
numbers = rsa8192.public_key().public_numbers()
p521 = ec.generate_private_key(ec.SECP521R1())
point = p521.public_key().public_numbers()

jwks = {'keys': [
    {'kty': 'RSA', 'kid': 'rsa8192', 'n': b64(uint(numbers.n, 1024)), 'e': b64(uint(numbers.e, 3))},
    {'kty': 'EC', 'kid': 'p521', 'crv': 'P-521', 'x': b64(uint(point.x, 66)), 'y': b64(uint(point.y, 66))},
]}


def rsa_sign(alg):
    hash_ = HASHES[alg[2:]]
    pad = padding.PKCS1v15() if alg.startswith('RS') else padding.PSS(padding.MGF1(hash_), hash_.digest_size)
    return lambda data: rsa8192.sign(data, pad, hash_)


def es512(data):
    r, s = decode_dss_signature(p521.sign(data, ec.ECDSA(hashes.SHA512())))
    return uint(r, 66) + uint(s, 66)


tokens = {
    'rs256_8192': signed('RS256', 'rsa8192', claims('rsa8192'), rsa_sign('RS256')),
    'ps256_8192': signed('PS256', 'rsa8192', claims('rsa8192-pss'), rsa_sign('PS256')),
    'rs512_8192': signed('RS512', 'rsa8192', claims('rsa8192-512'), rsa_sign('RS512')),
    'es512': signed('ES512', 'p521', claims('p521'), es512),
}
with open(OUT, 'w') as f:
    json.dump({'jwks': jwks, 'tokens': tokens}, f, indent=1)
    f.write('\n')
