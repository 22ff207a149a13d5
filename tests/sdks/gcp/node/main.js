// The official Node.js Cloud KMS client (@google-cloud/kms) against a kubekms server, configured as a
// user would: apiEndpoint/port, Application Default Credentials (a service-account key file:
// self-signed JWTs), and the server's CA in NODE_EXTRA_CA_CERTS.
// Prints one JSON line per step; tests/sdks/test_gcp_sdks.py asserts on them.
//
// Environment: KMS_TRANSPORT (grpc | rest), KMS_HOST, KMS_PORT, KMS_LOCATION
// (projects/P/locations/L), KMS_RING (a new key ring id), GOOGLE_APPLICATION_CREDENTIALS (may do
// everything), KMS_READER_CREDENTIALS (a key file of a principal that may only read).
'use strict';

const crypto = require('crypto');
const {KeyManagementServiceClient} = require('@google-cloud/kms');
const {Status} = require('google-gax');

const CODE_NAMES = Object.fromEntries(Object.entries(Status).map(([name, code]) => [code, name]));

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32c(data) {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const int = value => Number(String(value)); // int64: a Long over gRPC, a string over REST
const tail = name => name.slice(name.lastIndexOf('/') + 1);

function emit(step, fields) {
  console.log(JSON.stringify({step, code: 'OK', ...fields}));
}

async function attempt(step, call, fields = () => ({})) {
  try {
    const answer = await call();
    emit(step, fields(answer));
    return answer;
  } catch (error) {
    if (typeof error.code !== 'number') throw error;
    console.log(JSON.stringify({step, code: CODE_NAMES[error.code] || String(error.code), message: typeof error.details === 'string' && error.details ? error.details : error.message}));
    return undefined;
  }
}

function newClient(keyFilename) {
  const options = {apiEndpoint: process.env.KMS_HOST, port: Number(process.env.KMS_PORT)};
  if (keyFilename) options.keyFilename = keyFilename; // else Application Default Credentials
  // The server's CA comes from NODE_EXTRA_CA_CERTS for both transports. Not sslCreds: google-gax then uses
  // those channel credentials as they are, without the call credentials that carry the JWT.
  if (process.env.KMS_TRANSPORT === 'rest') {
    options.fallback = true;
    options.protocol = 'https';
  }
  return new KeyManagementServiceClient(options);
}

async function main() {
  const client = newClient();
  const location = process.env.KMS_LOCATION;
  const [ring] = await client.createKeyRing({parent: location, keyRingId: process.env.KMS_RING});
  emit('CreateKeyRing', {name: ring.name, create_time: int(ring.createTime.seconds)});

  const [key] = await client.createCryptoKey({
    parent: ring.name,
    cryptoKeyId: 'sym',
    cryptoKey: {purpose: 'ENCRYPT_DECRYPT', versionTemplate: {algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION'}, labels: {team: 'payments'}},
  });
  emit('CreateCryptoKey', {
    name: key.name, purpose: key.purpose, primary: key.primary.name, state: key.primary.state, labels: key.labels,
    destroy_days: int(key.destroyScheduledDuration.seconds) / 86400,
  });
  const signKey = await attempt('CreateCryptoKey.sign', () => client.createCryptoKey({parent: ring.name, cryptoKeyId: 'sign',
    cryptoKey: {purpose: 'ASYMMETRIC_SIGN', versionTemplate: {algorithm: 'EC_SIGN_P256_SHA256'}}}),
  ([created]) => ({purpose: created.purpose}));
  const macKey = await attempt('CreateCryptoKey.mac', () => client.createCryptoKey({parent: ring.name, cryptoKeyId: 'mac',
    cryptoKey: {purpose: 'MAC', versionTemplate: {algorithm: 'HMAC_SHA256'}}}), ([created]) => ({purpose: created.purpose}));
  // as Google's Node sample does: sign a SHA-256 digest, verify it with the public key's PEM
  const message = Buffer.from('pay 100 to alice');
  const digest = crypto.createHash('sha256').update(message).digest();
  const signVersion = `${signKey ? signKey[0].name : ring.name + '/cryptoKeys/sign'}/cryptoKeyVersions/1`;
  const publicKey = await attempt('GetPublicKey', () => client.getPublicKey({name: signVersion}), ([answer]) => ({
    algorithm: answer.algorithm, pem_crc32c_ok: int(answer.pemCrc32c.value) === crc32c(Buffer.from(answer.pem)),
  }));
  await attempt('AsymmetricSign', () => client.asymmetricSign({name: signVersion, digest: {sha256: digest},
    digestCrc32c: {value: crc32c(digest)}}), ([signed]) => ({
    verified: Boolean(publicKey) && crypto.verify('sha256', message, publicKey[0].pem, Buffer.from(signed.signature)),
    verified_digest_crc32c: signed.verifiedDigestCrc32c,
    signature_crc32c_ok: int(signed.signatureCrc32c.value) === crc32c(signed.signature),
  }));
  // as Google's Node sample does: encrypt locally with the public key (OAEP SHA-256), decrypt with the server
  const [decryptKey] = await client.createCryptoKey({parent: ring.name, cryptoKeyId: 'decrypt',
    cryptoKey: {purpose: 'ASYMMETRIC_DECRYPT', versionTemplate: {algorithm: 'RSA_DECRYPT_OAEP_2048_SHA256'}}});
  const decryptVersion = `${decryptKey.name}/cryptoKeyVersions/1`;
  const [decryptPublic] = await client.getPublicKey({name: decryptVersion});
  const sealed = crypto.publicEncrypt({key: decryptPublic.pem, oaepHash: 'sha256',
    padding: crypto.constants.RSA_PKCS1_OAEP_PADDING}, message);
  await attempt('AsymmetricDecrypt', () => client.asymmetricDecrypt({name: decryptVersion, ciphertext: sealed,
    ciphertextCrc32c: {value: crc32c(sealed)}}), ([opened]) => ({
    plaintext: Buffer.from(opened.plaintext).toString(), verified_ciphertext_crc32c: opened.verifiedCiphertextCrc32c,
    plaintext_crc32c_ok: int(opened.plaintextCrc32c.value) === crc32c(opened.plaintext),
  }));
  const macVersion = `${macKey ? macKey[0].name : ring.name + '/cryptoKeys/mac'}/cryptoKeyVersions/1`;
  const tag = await attempt('MacSign', () => client.macSign({name: macVersion, data: message,
    dataCrc32c: {value: crc32c(message)}}), ([answer]) => ({
    length: answer.mac.length, verified_data_crc32c: answer.verifiedDataCrc32c,
    mac_crc32c_ok: int(answer.macCrc32c.value) === crc32c(answer.mac),
  }));
  await attempt('MacVerify', async () => {
    const mac = Buffer.from(tag[0].mac);
    const [checked] = await client.macVerify({name: macVersion, data: message, mac, macCrc32c: {value: crc32c(mac)}});
    const [tampered] = await client.macVerify({name: macVersion, data: Buffer.concat([message, Buffer.from('!')]), mac});
    return {checked, tampered};
  }, ({checked, tampered}) => ({success: checked.success, verified_mac_crc32c: checked.verifiedMacCrc32c,
    tampered_success: tampered.success}));
  const version1 = `${key.name}/cryptoKeyVersions/1`;

  await attempt('GetCryptoKey', () => client.getCryptoKey({name: key.name}), ([got]) => ({
    name: got.name, primary: got.primary.name, algorithm: got.primary.algorithm, protection_level: got.primary.protectionLevel,
  }));

  for (let i = 0; i < 4; i++) {
    await client.createCryptoKey({parent: ring.name, cryptoKeyId: `more-${i}`, cryptoKey: {purpose: 'ENCRYPT_DECRYPT'}});
  }
  const listed = [];
  for await (const item of client.listCryptoKeysAsync({parent: ring.name, pageSize: 2})) listed.push(tail(item.name));
  // page by page, as a caller resuming from a stored token would
  let request = {parent: ring.name, pageSize: 2};
  let pages = 0;
  let totalSize = -1;
  while (request) {
    const [, next, raw] = await client.listCryptoKeys(request, {autoPaginate: false});
    pages += 1;
    totalSize = int(raw.totalSize);
    request = next;
  }
  const [all] = await client.listCryptoKeys({parent: ring.name}); // the auto-pager into one array
  emit('ListCryptoKeys', {names: listed, total_size: totalSize, pages, auto: all.map(k => tail(k.name))});

  const plaintext = Buffer.from('attack at dawn');
  const aad = Buffer.from('order=42');
  const [encrypted] = await client.encrypt({
    name: key.name, plaintext, additionalAuthenticatedData: aad,
    plaintextCrc32c: {value: crc32c(plaintext)}, additionalAuthenticatedDataCrc32c: {value: crc32c(aad)},
  });
  emit('Encrypt', {
    name: encrypted.name, verified_plaintext_crc32c: encrypted.verifiedPlaintextCrc32c,
    verified_aad_crc32c: encrypted.verifiedAdditionalAuthenticatedDataCrc32c,
    ciphertext_crc32c_ok: int(encrypted.ciphertextCrc32c.value) === crc32c(encrypted.ciphertext),
    protection_level: encrypted.protectionLevel,
  });
  const ciphertext = Buffer.from(encrypted.ciphertext);
  await attempt('Decrypt', () => client.decrypt({
    name: key.name, ciphertext, additionalAuthenticatedData: aad,
    ciphertextCrc32c: {value: crc32c(ciphertext)}, additionalAuthenticatedDataCrc32c: {value: crc32c(aad)},
  }), ([decrypted]) => ({
    plaintext: Buffer.from(decrypted.plaintext).toString(), used_primary: decrypted.usedPrimary,
    plaintext_crc32c_ok: int(decrypted.plaintextCrc32c.value) === crc32c(decrypted.plaintext),
  }));
  await attempt('Decrypt.wrong_aad', () => client.decrypt({name: key.name, ciphertext,
    additionalAuthenticatedData: Buffer.from('order=43')}));
  await attempt('Encrypt.bad_crc32c', () => client.encrypt({name: key.name, plaintext,
    plaintextCrc32c: {value: crc32c(plaintext) ^ 1}}));
  const large = Buffer.alloc(4096, 7);
  await attempt('Encrypt.large', async () => {
    const [sealed] = await client.encrypt({name: key.name, plaintext: large});
    const [opened] = await client.decrypt({name: key.name, ciphertext: sealed.ciphertext});
    return Buffer.from(opened.plaintext).equals(large);
  }, same => ({round_trip: same}));

  await attempt('CreateCryptoKeyVersion', () => client.createCryptoKeyVersion({parent: key.name, cryptoKeyVersion: {}}),
    ([version]) => ({name: version.name, state: version.state}));
  await attempt('UpdateCryptoKeyPrimaryVersion', () => client.updateCryptoKeyPrimaryVersion({name: key.name,
    cryptoKeyVersionId: '2'}), ([updated]) => ({primary: updated.primary.name}));

  const next = Math.floor(Date.now() / 1000) + 48 * 3600;
  const update = {name: key.name, labels: {team: 'risk', env: 'prod'}, rotationPeriod: {seconds: 30 * 86400},
    nextRotationTime: {seconds: next}};
  await attempt('UpdateCryptoKey', () => client.updateCryptoKey({cryptoKey: update,
    updateMask: {paths: ['labels', 'rotation_period', 'next_rotation_time']}}), ([updated]) => ({
    labels: updated.labels, rotation_period_s: int(updated.rotationPeriod.seconds),
    next_rotation_time: int(updated.nextRotationTime.seconds), expected_next: next,
  }));
  await attempt('UpdateCryptoKey.bad_mask', () => client.updateCryptoKey({cryptoKey: update, updateMask: {paths: ['purpose']}}));

  await attempt('UpdateCryptoKeyVersion', () => client.updateCryptoKeyVersion({
    cryptoKeyVersion: {name: version1, state: 'DISABLED'}, updateMask: {paths: ['state']},
  }), ([version]) => ({state: version.state}));
  await attempt('Decrypt.disabled', () => client.decrypt({name: key.name, ciphertext, additionalAuthenticatedData: aad}));
  await attempt('DestroyCryptoKeyVersion', () => client.destroyCryptoKeyVersion({name: version1}), ([version]) => ({
    state: version.state, destroy_in_days: (int(version.destroyTime.seconds) - Date.now() / 1000) / 86400,
  }));
  await attempt('RestoreCryptoKeyVersion', () => client.restoreCryptoKeyVersion({name: version1}),
    ([version]) => ({state: version.state}));
  const versions = [];
  for await (const item of client.listCryptoKeyVersionsAsync({parent: key.name, pageSize: 1})) {
    versions.push(`${tail(item.name)}=${item.state}`);
  }
  emit('ListCryptoKeyVersions', {versions});

  await attempt('GenerateRandomBytes', () => client.generateRandomBytes({location, lengthBytes: 32, protectionLevel: 'HSM'}),
    ([random]) => ({length: random.data.length, crc32c_ok: int(random.dataCrc32c.value) === crc32c(random.data)}));
  await attempt('GetCryptoKey.absent', () => client.getCryptoKey({name: `${ring.name}/cryptoKeys/absent`}));
  await attempt('CreateCryptoKey.bad_id', () => client.createCryptoKey({parent: ring.name, cryptoKeyId: 'not valid!',
    cryptoKey: {purpose: 'ENCRYPT_DECRYPT'}}));

  const reader = newClient(process.env.KMS_READER_CREDENTIALS);
  await attempt('reader.GetCryptoKey', () => reader.getCryptoKey({name: key.name}), ([seen]) => ({name: seen.name}));
  await attempt('reader.Encrypt', () => reader.encrypt({name: key.name, plaintext}));
  await reader.close();
  await client.close();
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
