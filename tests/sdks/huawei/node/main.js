// Huawei's official Node.js SDK core (@huaweicloud/huaweicloud-sdk-core), unchanged, against a kubekms server.
//
// Huawei's KMS package for Node.js (@huaweicloud/huaweicloud-sdk-kms) is not on the npm registry, so the requests
// are given to the core's HcClient as that package's KmsClient gives them (method, path template, content type,
// body, query and path parameters); signing, the HTTP client, retries and error parsing are the core's own.
// Endpoint and credentials come from the environment (KMS_ENDPOINT, KMS_PROJECT_ID, KMS_ACCESS_KEY,
// KMS_SECRET_KEY, KMS_PREFIX). Each step prints one JSON line, the same steps as the Go and Java programs.
// No key material is printed: data keys are compared here and only the outcome is printed.
"use strict";

const crypto = require("crypto");
const { BasicCredentials } = require("@huaweicloud/huaweicloud-sdk-core");
const { ClientBuilder } = require("@huaweicloud/huaweicloud-sdk-core/ClientBuilder");

// the core logs every error answer (log4js) on stdout, which carries this program's JSON lines: to stderr with it
require("log4js").configure({
  appenders: { stderr: { type: "stderr" } },
  categories: { default: { appenders: ["stderr"], level: "error" } },
});

const JSON_UTF8 = "application/json;charset=UTF-8";

function client(ak, sk) {
  const credentials = new BasicCredentials().withAk(ak).withSk(sk).withProjectId(process.env.KMS_PROJECT_ID);
  return new ClientBuilder((hcClient) => hcClient).withCredential(credentials).withEndpoint(process.env.KMS_ENDPOINT).build();
}

// one KMS call as the SDK's KmsClient makes it: a path under /v1.0/{project_id}/kms/
function call(hc, method, path, { body, query = {}, pathParams = {}, contentType = JSON_UTF8 } = {}) {
  const options = {
    method,
    url: `/v1.0/{project_id}/kms/${path}`,
    contentType,
    queryParams: query,
    pathParams,
    headers: {},
  };
  if (body !== undefined) {
    options.data = body;
    options.headers["Content-Type"] = contentType;
  }
  options.responseHeaders = [""];
  return hc.sendRequest(options);
}

async function step(name, run) {
  const line = { step: name };
  try {
    line.ok = await run();
  } catch (error) {
    if (error && error.httpStatusCode !== undefined) {
      line.error = { type: error.name, status: error.httpStatusCode, code: error.errorCode ?? null,
                     message: error.errorMsg ?? null, request_id: error.requestId ?? null };
    } else {
      line.error = { type: (error && error.name) || typeof error, message: String(error && error.message) };
    }
  }
  process.stdout.write(JSON.stringify(line) + "\n");
}

async function errorCode(run) {
  try {
    await run();
    return "";
  } catch (error) {
    return error.errorCode ?? null;
  }
}

async function main() {
  const c = client(process.env.KMS_ACCESS_KEY, process.env.KMS_SECRET_KEY);
  const prefix = process.env.KMS_PREFIX;
  const keyIds = [];

  for (const suffix of ["a", "b", "c"]) {
    await step(`create-key-${suffix}`, async () => {
      const answer = await call(c, "POST", "create-key",
                                { body: { key_alias: `${prefix}-${suffix}`, key_description: "made by the Node.js SDK" } });
      keyIds.push(answer.key_info.key_id);
      return { key_id: answer.key_info.key_id, domain_id: answer.key_info.domain_id, status: answer.httpStatusCode };
    });
  }
  if (keyIds.length !== 3) {
    process.exit(1);
  }
  const keyId = keyIds[0];

  await step("list-keys-paged", async () => {
    const pages = [];
    const listed = [];
    let marker;
    while (pages.length < 100) {
      const body = { limit: "2" };
      if (marker) body.marker = marker;
      const answer = await call(c, "POST", "list-keys", { body });
      listed.push(...answer.keys);
      pages.push({ keys: answer.keys.length, details: (answer.key_details || []).length,
                   truncated: answer.truncated, total: answer.total });
      if (answer.truncated !== "true") break;
      marker = answer.next_marker;
    }
    return { pages, listed };
  });

  await step("describe-key", async () => {
    const info = (await call(c, "POST", "describe-key", { body: { key_id: `${prefix}-a` } })).key_info;
    return { key_id: info.key_id, key_alias: info.key_alias, key_state: info.key_state, key_spec: info.key_spec,
             key_usage: info.key_usage, origin: info.origin, key_description: info.key_description,
             creation_date: info.creation_date, key_rotation_enabled: info.key_rotation_enabled };
  });

  let dataKey;
  let dataKeyCipher;
  await step("create-datakey", async () => {
    const answer = await call(c, "POST", "create-datakey", { body: { key_id: keyId, datakey_length: "256" } });
    dataKey = Buffer.from(answer.plain_text, "hex");
    dataKeyCipher = answer.cipher_text;
    return { key_id: answer.key_id, plain_bytes: dataKey.length, cipher_text_set: Boolean(dataKeyCipher) };
  });

  await step("create-datakey-without-plaintext", async () => {
    const answer = await call(c, "POST", "create-datakey-without-plaintext",
                              { body: { key_id: keyId, key_spec: "AES_128" } });
    return { key_id: answer.key_id, cipher_text_set: Boolean(answer.cipher_text) };
  });

  await step("decrypt-datakey", async () => {
    const answer = await call(c, "POST", "decrypt-datakey",
                              { body: { key_id: keyId, cipher_text: dataKeyCipher, datakey_cipher_length: "32" } });
    return { matches: Buffer.from(answer.data_key, "hex").equals(dataKey), datakey_length: answer.datakey_length };
  });

  await step("encrypt-decrypt-datakey", async () => {
    const own = crypto.randomBytes(32);
    const digest = crypto.createHash("sha256").update(own).digest();
    const aad = "tenant=node";
    const encrypted = await call(c, "POST", "encrypt-datakey", { body: {
      key_id: keyId, plain_text: Buffer.concat([own, digest]).toString("hex"), datakey_plain_length: "32",
      additional_authenticated_data: aad } });
    const decrypted = await call(c, "POST", "decrypt-datakey", { body: {
      key_id: keyId, cipher_text: encrypted.cipher_text, datakey_cipher_length: "32",
      additional_authenticated_data: aad } });
    const wrongAad = await errorCode(() => call(c, "POST", "decrypt-datakey", { body: {
      key_id: keyId, cipher_text: encrypted.cipher_text, datakey_cipher_length: "32",
      additional_authenticated_data: "tenant=other" } }));
    return { encrypt_datakey_length: encrypted.datakey_length, matches: Buffer.from(decrypted.data_key, "hex").equals(own),
             digest_matches: decrypted.datakey_dgst === digest.toString("hex"), wrong_aad_code: wrongAad };
  });

  await step("encrypt-decrypt-data", async () => {
    const encrypted = await call(c, "POST", "encrypt-data", { body: {
      key_id: keyId, plain_text: "hello from Node.js", additional_authenticated_data: "ctx" } });
    const decrypted = await call(c, "POST", "decrypt-data", { body: {
      cipher_text: encrypted.cipher_text, additional_authenticated_data: "ctx" } });
    return { key_id: decrypted.key_id, plain_text: decrypted.plain_text, plain_text_base64: decrypted.plain_text_base64,
             cipher_is_base64: /^[A-Za-z0-9+/]+=*$/.test(encrypted.cipher_text) };
  });

  await step("gen-random", async () => {
    const data = (await call(c, "POST", "gen-random", { body: { random_data_length: "256" } })).random_data;
    return { hex_chars: data.length, is_hex: /^[0-9a-fA-F]*$/.test(data) };
  });

  const keyBody = (id) => ({ body: { key_id: id } });
  await step("disable-key", async () => ({
    key_state: (await call(c, "POST", "disable-key", keyBody(keyId))).key_info.key_state }));
  await step("datakey-on-disabled-key", async () => {
    await call(c, "POST", "create-datakey", keyBody(keyId));
    return {};
  });
  await step("enable-key", async () => ({
    key_state: (await call(c, "POST", "enable-key", keyBody(keyId))).key_info.key_state }));

  const doomed = keyIds[2];
  await step("schedule-key-deletion", async () => {
    const answer = await call(c, "POST", "schedule-key-deletion", { body: { key_id: doomed, pending_days: "7" } });
    const described = (await call(c, "POST", "describe-key", keyBody(doomed))).key_info;
    return { key_state: answer.key_state, described_state: described.key_state,
             scheduled_deletion_date: described.scheduled_deletion_date };
  });
  await step("cancel-key-deletion", async () => ({
    key_state: (await call(c, "POST", "cancel-key-deletion", keyBody(doomed))).key_state }));

  const rotationStatus = async () => {
    const answer = await call(c, "POST", "get-key-rotation-status", keyBody(keyId));
    return { enabled: answer.key_rotation_enabled, interval: answer.rotation_interval,
             rotations: answer.number_of_rotations };
  };
  await step("enable-key-rotation", async () => {
    await call(c, "POST", "enable-key-rotation", keyBody(keyId));
    return rotationStatus();
  });
  await step("update-key-rotation-interval", async () => {
    await call(c, "POST", "update-key-rotation-interval", { body: { key_id: keyId, rotation_interval: 90 } });
    return rotationStatus();
  });
  await step("disable-key-rotation", async () => {
    await call(c, "POST", "disable-key-rotation", keyBody(keyId));
    return rotationStatus();
  });

  const listTags = async () => {
    const answer = await call(c, "GET", "{key_id}/tags", { pathParams: { key_id: keyId }, contentType: "application/json" });
    return { tags: Object.fromEntries(answer.tags.map((tag) => [tag.key, tag.value])) };
  };
  const tags = { team: "blue", "a/b:c": "slash" };
  await step("create-kms-tag", async () => {
    for (const [key, value] of Object.entries(tags)) {
      await call(c, "POST", "{key_id}/tags", { pathParams: { key_id: keyId }, body: { tag: { key, value } } });
    }
    return listTags();
  });
  await step("delete-tag", async () => {
    for (const key of Object.keys(tags)) {
      await call(c, "DELETE", "{key_id}/tags/{key}", { pathParams: { key_id: keyId, key }, contentType: "application/json" });
    }
    return listTags();
  });

  const alias = `${prefix}/second:x`; // "/" and ":" in a body, then in list-aliases' query
  const aliasesOf = async (id) => {
    const pages = await call(c, "GET", "aliases", { query: { key_id: id, limit: "10" }, contentType: "application/json" });
    // the answer is a JSON array: the core hands it over as it is
    const list = Array.isArray(pages) ? pages : pages.body || [];
    return { aliases: list.flatMap((page) => page.aliases.map((entity) => entity.alias)) };
  };
  await step("create-alias", async () => {
    await call(c, "POST", "aliases", { body: { key_id: keyId, alias }, contentType: "application/json" });
    return aliasesOf(keyId);
  });
  await step("associate-alias", async () => {
    const answer = await call(c, "POST", "alias/associate", { body: { alias, target_key_id: keyIds[1] },
                                                             contentType: "application/json" });
    return { key_id: answer.key_id, ...(await aliasesOf(alias)) };
  });
  await step("delete-alias", async () => {
    await call(c, "DELETE", "aliases", { body: { key_id: keyIds[1], aliases: [alias] }, contentType: "application/json" });
    return aliasesOf(keyIds[1]);
  });

  await step("grants", async () => {
    const created = await call(c, "POST", "create-grant", { body: {
      key_id: keyId, grantee_principal: "grantee1", operations: ["create-datakey", "decrypt-datakey"],
      name: "node-grant", retiring_principal: "grantee2" } });
    const listed = await call(c, "POST", "list-grants", { body: { key_id: keyId } });
    const grants = listed.grants.map((entry) => ({
      grant_id_matches: entry.grant_id === created.grant_id, grantee: entry.grantee_principal,
      type: entry.grantee_principal_type, operations: entry.operations, name: entry.name,
      retiring: entry.retiring_principal }));
    await call(c, "POST", "revoke-grant", { body: { key_id: keyId, grant_id: created.grant_id } });
    const after = await call(c, "POST", "list-grants", { body: { key_id: keyId } });
    return { grants, total: listed.total, truncated: listed.truncated, total_after_revoke: after.total };
  });

  await step("user-instances", async () => ({
    instance_num: (await call(c, "GET", "user-instances", { contentType: "application/json" })).instance_num }));
  await step("user-quotas", async () => {
    const answer = await call(c, "GET", "user-quotas", { contentType: "application/json" });
    return { quotas: Object.fromEntries(answer.quotas.resources.map((r) => [r.type, { used: r.used, quota: r.quota }])) };
  });

  // after the account calls: these keys are not AES_256 ones, but they count as instances
  await step("sign-verify", async () => {
    const ecKey = (await call(c, "POST", "create-key", { body: {
      key_alias: `${prefix}-ec`, key_spec: "EC_P256", key_usage: "SIGN_VERIFY" } })).key_info.key_id;
    const digest = crypto.createHash("sha256").update("signed by the Node.js SDK").digest();
    const signature = (await call(c, "POST", "sign", { body: {
      key_id: ecKey, message: digest.toString("base64"), message_type: "DIGEST", signing_algorithm: "ECDSA_SHA_256" } }))
      .signature;
    const verify = async (message) => (await call(c, "POST", "verify", { body: {
      key_id: ecKey, message: message.toString("base64"), signature, message_type: "DIGEST",
      signing_algorithm: "ECDSA_SHA_256" } })).signature_valid;
    const pem = (await call(c, "POST", "get-publickey", keyBody(ecKey))).public_key;
    const localValid = crypto.createVerify("SHA256").update("signed by the Node.js SDK")
      .verify(pem, Buffer.from(signature, "base64"));
    return { signature_valid: await verify(digest),
             tampered_valid: await verify(crypto.createHash("sha256").update("not signed").digest()),
             local_valid: localValid };
  });
  await step("mac", async () => {
    const hmacKey = (await call(c, "POST", "create-key", { body: { key_alias: `${prefix}-hmac`, key_spec: "HMAC_256" } }))
      .key_info.key_id;
    const message = Buffer.from("mac me").toString("base64");
    const mac = (await call(c, "POST", "generate-mac", { body: {
      key_id: hmacKey, mac_algorithm: "HMAC_SHA_256", message } })).mac;
    const verify = async (candidate) => (await call(c, "POST", "verify-mac", { body: {
      key_id: hmacKey, mac_algorithm: "HMAC_SHA_256", message, mac: candidate } })).mac_valid;
    return { mac_valid: await verify(mac), tampered_valid: await verify(Buffer.alloc(32).toString("base64")),
             mac_bytes: Buffer.from(mac, "base64").length };
  });

  await step("import", async () => {
    const byok = (await call(c, "POST", "create-key", { body: { key_alias: `${prefix}-byok`, origin: "external" } }))
      .key_info.key_id;
    const pending = (await call(c, "POST", "describe-key", keyBody(byok))).key_info;
    const params = await call(c, "POST", "get-parameters-for-import", { body: {
      key_id: byok, wrapping_algorithm: "RSAES_OAEP_SHA_256" } });
    const wrapping = crypto.createPublicKey({ key: Buffer.from(params.public_key, "base64"), format: "der", type: "spki" });
    const wrapped = crypto.publicEncrypt({ key: wrapping, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
                                         crypto.randomBytes(32));
    const expires = Math.floor(Date.now() / 1000) + 30 * 86400;
    await call(c, "POST", "import-key-material", { body: {
      key_id: byok, import_token: params.import_token, encrypted_key_material: wrapped.toString("base64"),
      expiration_time: expires } });
    const imported = (await call(c, "POST", "describe-key", keyBody(byok))).key_info;
    const made = await call(c, "POST", "create-datakey", keyBody(byok));
    return { pending_state: pending.key_state, origin: pending.origin,
             public_key_bits: wrapping.asymmetricKeyDetails.modulusLength,
             token_expires_in_seconds: params.expiration_time - Math.floor(Date.now() / 1000),
             state: imported.key_state, expiration_matches: imported.expiration_time === String(expires * 1000),
             datakey: made.key_id === byok };
  });

  await step("rsa-datakey-pair", async () => {
    const made = await call(c, "POST", "create-rsa-datakey-pair", { body: { key_id: keyIds[1], key_spec: "RSA_2048" } });
    const privateKey = crypto.createPrivateKey({ key: Buffer.from(made.private_key_plain_text, "base64"), format: "der",
                                                 type: "pkcs8" });
    const publicDer = crypto.createPublicKey(privateKey).export({ format: "der", type: "spki" });
    const opened = await call(c, "POST", "decrypt-data", { body: { cipher_text: made.private_key_cipher_text } });
    return { key_spec: made.key_spec, bits: privateKey.asymmetricKeyDetails.modulusLength,
             public_matches: publicDer.toString("base64") === made.public_key,
             cipher_opens_to_private: opened.plain_text_base64 === made.private_key_plain_text };
  });
  await step("re-encrypt", async () => {
    const made = await call(c, "POST", "create-datakey", { body: { key_id: keyIds[1] } });
    const moved = await call(c, "POST", "re-encrypt", { body: { cipher_text: made.cipher_text,
                                                              destination_key_id: keyIds[0] } });
    const opened = await call(c, "POST", "decrypt-datakey", { body: { key_id: keyIds[0], cipher_text: moved.cipher_text,
                                                                    datakey_cipher_length: "32" } });
    return { key_matches: moved.key_id === keyIds[0], source_matches: moved.source_key_id === keyIds[1],
             opens_to_data_key: opened.data_key === made.plain_text };
  });
  await step("list-kms-tags", async () => {
    await call(c, "POST", "{key_id}/tags", { pathParams: { key_id: keyIds[1] }, body: { tag: { key: "env", value: "prod" } } });
    const answer = await call(c, "GET", "tags", { contentType: "application/json" });
    return { tags: Object.fromEntries(answer.tags.map((tag) => [tag.key, tag.values])) };
  });
  await step("create-pin-not-offered", async () => {
    await call(c, "POST", "create-pin", { body: {} });
    return {};
  });

  await step("unknown-key", async () => {
    await call(c, "POST", "describe-key", keyBody("0d0466b0-e727-4d9c-b35d-f84bb474a37f"));
    return {};
  });
  await step("wrong-secret-key", async () => {
    await call(client(process.env.KMS_ACCESS_KEY, process.env.KMS_SECRET_KEY + "x"), "POST", "list-keys", { body: {} });
    return {};
  });
  await step("unknown-access-key", async () => {
    await call(client("AKUNKNOWN0000000000", process.env.KMS_SECRET_KEY), "POST", "list-keys", { body: {} });
    return {};
  });
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
