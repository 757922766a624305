#!/usr/bin/env python3
"""Regenerates the test fixtures in this directory: keys made by openssl, and JWTs (RSA and
ECDSA) signed by openssl independently of the Rust crates under test. Needs openssl 3 and
python3-cryptography (for the 2049-bit key, which openssl cannot generate directly).

    python3 make_fixtures.py [output-dir]      # default: this directory

The tests only need the files to agree with each other; new keys and tokens work as well.
"""
import base64, hashlib, json, os, subprocess, sys, tempfile

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
WORK = tempfile.mkdtemp()


def run(*args, data=None):
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


def pem(name):
    return os.path.join(WORK, name + '.pem')


def rsa_key(bits):
    run('openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', f'rsa_keygen_bits:{bits}', '-out', pem(f'rsa{bits}'))


def rsa_2049():
    """openssl picks primes of equal size; build n of exactly 2049 bits from two primes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    e = 65537
    prime = lambda bits: int(run('openssl', 'prime', '-generate', '-bits', str(bits)))
    while True:
        p, q = prime(1025), prime(1024)
        n = p * q
        if n.bit_length() != 2049:
            continue
        try:
            d = pow(e, -1, (p - 1) * (q - 1))
        except ValueError:
            continue
        break
    key = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, n)).private_key()
    with open(pem('rsa2049'), 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))


def export_rsa(bits, private=True):
    if private:
        run('openssl', 'rsa', '-in', pem(f'rsa{bits}'), '-traditional', '-outform', 'DER', '-out', os.path.join(OUT, f'rsa{bits}.der'))
    run('openssl', 'rsa', '-in', pem(f'rsa{bits}'), '-RSAPublicKey_out', '-outform', 'DER', '-out', os.path.join(OUT, f'rsa{bits}_pub.der'))


def other_keys():
    for name, args in [('p256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']),
                       ('p384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']),
                       ('ed25519', ['-algorithm', 'ED25519'])]:
        run('openssl', 'genpkey', *args, '-outform', 'DER', '-out', os.path.join(OUT, name + '.der'))


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode()


HASH = {'256': 'sha256', '384': 'sha384', '512': 'sha512'}
lines = []


def token(bits, alg, expect, note, sign):
    header = b64(json.dumps({'alg': alg, 'typ': 'JWT', 'kid': f'rsa{bits}'}, separators=(',', ':')).encode())
    payload = b64(json.dumps({'sub': 'kat', 'note': note, 'iat': 1700000000}, separators=(',', ':')).encode())
    signing_input = (header + '.' + payload).encode()
    lines.append(f'{bits} {alg} {expect} {header}.{payload}.{b64(sign(signing_input))}')


def dgst(bits, hash_bits, pss_salt=None):
    def sign(data):
        args = ['openssl', 'dgst', '-' + HASH[hash_bits]]
        if pss_salt is not None:
            args += ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', f'rsa_pss_saltlen:{pss_salt}', '-sigopt', 'rsa_mgf1_md:' + HASH[hash_bits]]
        return run(*args, '-sign', pem(f'rsa{bits}'), data=data)
    return sign


def raw_pkcs1(bits, digest_info):
    def sign(data):
        return run('openssl', 'pkeyutl', '-sign', '-pkeyopt', 'rsa_padding_mode:pkcs1', '-inkey', pem(f'rsa{bits}'), data=digest_info(data))
    return sign


OID256 = bytes.fromhex('608648016503040201')
OID384 = bytes.fromhex('608648016503040202')


def digest_info(oid, with_null):
    def build(data):
        h = hashlib.sha256(data).digest()
        algorithm = bytes([0x06, 0x09]) + oid + (bytes([0x05, 0x00]) if with_null else b'')
        algorithm = bytes([0x30, len(algorithm)]) + algorithm
        body = algorithm + bytes([0x04, 0x20]) + h
        return bytes([0x30, len(body)]) + body
    return build


EC = {'p256': ('ES256', 'sha256', 32, 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551),
      'p384': ('ES384', 'sha384', 48, int('ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973', 16))}


def der_signature(der):
    """(r, s) from a DER ECDSA-Sig-Value (short lengths only, as P-256/P-384 produce)."""
    def integer(b, i):
        assert b[i] == 0x02
        n = b[i + 1]
        return int.from_bytes(b[i + 2:i + 2 + n], 'big'), i + 2 + n
    assert der[0] == 0x30
    i = 3 if der[1] == 0x81 else 2
    r, i = integer(der, i)
    s, _ = integer(der, i)
    return r, s


def ec_tokens():
    """ES256/ES384 tokens signed by openssl with the p256/p384 keys: the JOSE raw r || s form
    (accepted), the same with s replaced by n - s (accepted: rust_crypto does not require low S),
    and openssl's DER signature used as is (refused: JOSE wants raw r || s)."""
    out = []
    for name, (alg, hash_name, size, n) in EC.items():
        key = os.path.join(OUT, name + '.der')
        for i in range(3):
            header = b64(json.dumps({'alg': alg, 'typ': 'JWT', 'kid': name}, separators=(',', ':')).encode())
            payload = b64(json.dumps({'sub': 'kat', 'n': i, 'iat': 1700000000}, separators=(',', ':')).encode())
            signing_input = (header + '.' + payload).encode()
            der = run('openssl', 'dgst', '-' + hash_name, '-keyform', 'DER', '-sign', key, data=signing_input)
            r, s = der_signature(der)
            raw = r.to_bytes(size, 'big') + s.to_bytes(size, 'big')
            high = r.to_bytes(size, 'big') + (n - s).to_bytes(size, 'big')
            out.append(f'{name} {alg} accept {header}.{payload}.{b64(raw)}')
            out.append(f'{name} {alg} accept {header}.{payload}.{b64(high)}')
            out.append(f'{name} {alg} reject {header}.{payload}.{b64(der)}')
    with open(os.path.join(OUT, 'openssl_ec_tokens.txt'), 'w') as f:
        f.write('# key algorithm expected token; made by openssl 3.0 (independent of the p256/p384 crates)\n')
        f.write('\n'.join(out) + '\n')


def main():
    os.makedirs(OUT, exist_ok=True)
    for bits in (2048, 4096, 8192):
        rsa_key(bits)
    rsa_2049()
    for bits in (2048, 2049, 4096):
        export_rsa(bits)
    export_rsa(8192, private=False)
    other_keys()
    for bits in ('2048', '2049', '4096'):
        for h in ('256', '384', '512'):
            token(bits, 'RS' + h, 'accept', 'pkcs1', dgst(bits, h))
            token(bits, 'PS' + h, 'accept', 'pss salt=hlen', dgst(bits, h, 'digest'))
    # Beyond the rsa crate's 4096-bit limit: both providers refuse the key.
    token('8192', 'RS256', 'reject', '8192-bit key', dgst('8192', '256'))
    token('8192', 'PS512', 'reject', '8192-bit key', dgst('8192', '512', 'digest'))
    for bits in ('2048', '2049'):
        for salt in ('0', '20', 'max'):
            token(bits, 'PS256', 'reject', f'pss salt={salt}', dgst(bits, '256', salt))
        token(bits, 'PS512', 'reject', 'pss salt=0', dgst(bits, '512', '0'))
    token('2048', 'RS256', 'accept', 'raw digestinfo', raw_pkcs1('2048', digest_info(OID256, True)))
    token('2048', 'RS256', 'reject', 'digestinfo without NULL', raw_pkcs1('2048', digest_info(OID256, False)))
    token('2048', 'RS256', 'reject', 'digestinfo with sha384 oid', raw_pkcs1('2048', digest_info(OID384, True)))
    token('2048', 'RS256', 'reject', 'bare hash', raw_pkcs1('2048', lambda data: hashlib.sha256(data).digest()))
    ec_tokens()
    with open(os.path.join(OUT, 'openssl_tokens.txt'), 'w') as f:
        f.write('# key-bits algorithm expected token; made by openssl 3.0 (independent of the rsa crate)\n')
        f.write('\n'.join(lines) + '\n')
    print(f'{len(lines)} tokens and keys written to {OUT}')


main()
