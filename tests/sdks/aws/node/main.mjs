// The AWS SDK for JavaScript v3 against the kubekms server's AWS JSON 1.1 wire: one JSON line per step on stdout.
//
// Reads KMS_ENDPOINT, KMS_ACCESS_KEY, KMS_SECRET_KEY, KMS_REGION, and KMS_INTEROP_KEY with KMS_INTEROP_CIPHERTEXT
// (a key and a ciphertext boto3 made) from the environment; the Python test
// (tests/sdks/test_aws_sdks.py) asserts on what it prints. An unexpected error ends the program (exit 1).
import crypto from "node:crypto";
import http from "node:http";
import { createRequire } from "node:module";

// NODE_PATH (the cached node_modules) is honoured by require, not by ESM imports
const require = createRequire(import.meta.url);
const kms = require("@aws-sdk/client-kms");

const env = process.env;

function emit(step, fields) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + "\n");
}

// An http.Agent that counts new TCP connections: the SDK's keep-alive pool must reuse them.
class CountingAgent extends http.Agent {
  constructor(maxSockets = 50) {
    super({ keepAlive: true, maxSockets });
    this.dials = 0;
  }
  createConnection(options, callback) {
    this.dials += 1;
    return super.createConnection(options, callback);
  }
}

function client(accessKeyId, secretAccessKey, agent, options = {}) {
  return new kms.KMSClient({
    region: env.KMS_REGION,
    endpoint: env.KMS_ENDPOINT,
    credentials: { accessKeyId, secretAccessKey },
    requestHandler: { httpAgent: agent },
    ...options,
  });
}

async function expectError(call, typeName) {
  try {
    await call();
  } catch (error) {
    return {
      error: true,
      name: error.name,
      typed: error instanceof kms[typeName],
      message: error.message,
      status: error.$metadata?.httpStatusCode,
      fault: error.$fault,
    };
  }
  return { error: false };
}

const equal = (a, b) => Buffer.from(a).equals(Buffer.from(b));

async function main() {
  const agent = new CountingAgent();
  const c = client(env.KMS_ACCESS_KEY, env.KMS_SECRET_KEY, agent);
  const send = (Command, input) => c.send(new Command(input));
  const suffix = `${Date.now()}${process.pid}`;

  const created = (
    await send(kms.CreateKeyCommand, { Description: "js sdk", Tags: [{ TagKey: "team", TagValue: "sdk" }] })
  ).KeyMetadata;
  const symmetric = created.KeyId;
  emit("create_symmetric", {
    key_id: symmetric,
    arn: created.Arn,
    key_state: created.KeyState,
    key_spec: created.KeySpec,
    enabled: created.Enabled,
    creation_date: created.CreationDate.getTime() / 1000,
    creation_date_is_date: created.CreationDate instanceof Date,
  });
  const second = (await send(kms.CreateKeyCommand, {})).KeyMetadata.KeyId;

  const hmacKey = (await send(kms.CreateKeyCommand, { KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC" }))
    .KeyMetadata;
  emit("create_hmac", { key_id: hmacKey.KeyId, key_spec: hmacKey.KeySpec, mac_algorithms: hmacKey.MacAlgorithms });
  const signing = (await send(kms.CreateKeyCommand, { KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY" }))
    .KeyMetadata;
  emit("create_ecc", {
    key_id: signing.KeyId,
    key_spec: signing.KeySpec,
    signing_algorithms: signing.SigningAlgorithms,
  });

  const described = (await send(kms.DescribeKeyCommand, { KeyId: symmetric })).KeyMetadata;
  emit("describe", {
    key_id: described.KeyId,
    key_state: described.KeyState,
    origin: described.Origin,
    key_manager: described.KeyManager,
    description: described.Description,
    creation_date: described.CreationDate.getTime() / 1000,
    encryption_algorithms: described.EncryptionAlgorithms,
    account: described.AWSAccountId,
  });

  let pages = 0;
  const listed = [];
  for await (const page of kms.paginateListKeys({ client: c, pageSize: 1 }, {})) {
    pages += 1;
    listed.push(...page.Keys.map((key) => key.KeyId));
  }
  emit("list_keys", { pages, key_ids: listed });

  const alias = `alias/js-sdk-${suffix}`;
  await send(kms.CreateAliasCommand, { AliasName: alias, TargetKeyId: symmetric });
  const aliases = await send(kms.ListAliasesCommand, { KeyId: symmetric });
  emit("aliases", { alias, names: aliases.Aliases.map((entry) => entry.AliasName) });

  await send(kms.TagResourceCommand, { KeyId: symmetric, Tags: [{ TagKey: "env", TagValue: "test" }] });
  const tags = Object.fromEntries(
    (await send(kms.ListResourceTagsCommand, { KeyId: symmetric })).Tags.map((tag) => [tag.TagKey, tag.TagValue]),
  );
  emit("tags", { tags });

  const context = { purpose: "sdk-test", lang: "js" };
  const dataKey = await send(kms.GenerateDataKeyCommand, { KeyId: alias, KeySpec: "AES_256", EncryptionContext: context });
  const opened = await send(kms.DecryptCommand, { CiphertextBlob: dataKey.CiphertextBlob, EncryptionContext: context });
  const withoutPlaintext = await send(kms.GenerateDataKeyWithoutPlaintextCommand, { KeyId: symmetric, NumberOfBytes: 24 });
  const openedWithout = await send(kms.DecryptCommand, {
    CiphertextBlob: withoutPlaintext.CiphertextBlob,
    KeyId: symmetric,
  });
  emit("data_keys", {
    plaintext_len: dataKey.Plaintext.length,
    round_trip: equal(dataKey.Plaintext, opened.Plaintext),
    key_id: dataKey.KeyId,
    without_plaintext_len: openedWithout.Plaintext.length,
  });

  const message = new TextEncoder().encode("hello from the js sdk");
  const sealed = await send(kms.EncryptCommand, { KeyId: symmetric, Plaintext: message, EncryptionContext: context });
  const decrypted = await send(kms.DecryptCommand, { CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: context });
  emit("encrypt_decrypt", {
    round_trip: equal(decrypted.Plaintext, message),
    key_id: decrypted.KeyId,
    algorithm: decrypted.EncryptionAlgorithm,
    wrong_context: await expectError(
      () => send(kms.DecryptCommand, { CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: { purpose: "other" } }),
      "InvalidCiphertextException",
    ),
  });

  const reencrypted = await send(kms.ReEncryptCommand, {
    CiphertextBlob: sealed.CiphertextBlob,
    SourceEncryptionContext: context,
    DestinationKeyId: second,
  });
  const reopened = await send(kms.DecryptCommand, { CiphertextBlob: reencrypted.CiphertextBlob });
  emit("reencrypt", {
    source_key_id: reencrypted.SourceKeyId,
    key_id: reencrypted.KeyId,
    round_trip: equal(reopened.Plaintext, message),
  });

  const random = await send(kms.GenerateRandomCommand, { NumberOfBytes: 32 });
  emit("random", { len: random.Plaintext.length });

  const signRequest = { KeyId: signing.KeyId, MessageType: "RAW", SigningAlgorithm: "ECDSA_SHA_256" };
  const signature = await send(kms.SignCommand, { ...signRequest, Message: message });
  const verified = await send(kms.VerifyCommand, { ...signRequest, Message: message, Signature: signature.Signature });
  emit("sign_verify", {
    valid: verified.SignatureValid,
    algorithm: signature.SigningAlgorithm,
    tampered: await expectError(
      () =>
        send(kms.VerifyCommand, {
          ...signRequest,
          Message: new TextEncoder().encode("another message"),
          Signature: signature.Signature,
        }),
      "KMSInvalidSignatureException",
    ),
  });

  const macRequest = { KeyId: hmacKey.KeyId, Message: message, MacAlgorithm: "HMAC_SHA_256" };
  const mac = await send(kms.GenerateMacCommand, macRequest);
  const macValid = await send(kms.VerifyMacCommand, { ...macRequest, Mac: mac.Mac });
  emit("mac", { len: mac.Mac.length, valid: macValid.MacValid });

  await send(kms.EnableKeyRotationCommand, { KeyId: symmetric, RotationPeriodInDays: 90 });
  const status = await send(kms.GetKeyRotationStatusCommand, { KeyId: symmetric });
  await send(kms.RotateKeyOnDemandCommand, { KeyId: symmetric });
  const rotations = await send(kms.ListKeyRotationsCommand, { KeyId: symmetric });
  const afterRotation = await send(kms.DecryptCommand, { CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: context });
  emit("rotation", {
    enabled: status.KeyRotationEnabled,
    period: status.RotationPeriodInDays,
    next_rotation_date: status.NextRotationDate.getTime() / 1000,
    rotation_types: rotations.Rotations.map((rotation) => rotation.RotationType),
    truncated: rotations.Truncated,
    old_ciphertext_opens: equal(afterRotation.Plaintext, message),
  });

  const dryRun = await expectError(
    () =>
      send(kms.CreateGrantCommand, {
        KeyId: symmetric,
        GranteePrincipal: "arn:aws:iam::default:user/someone",
        Operations: ["Encrypt"],
        DryRun: true,
      }),
    "DryRunOperationException",
  );
  dryRun.grants = (await send(kms.ListGrantsCommand, { KeyId: symmetric })).Grants.length;
  emit("dry_run", dryRun);

  await send(kms.DisableKeyCommand, { KeyId: second });
  emit(
    "disabled",
    await expectError(() => send(kms.EncryptCommand, { KeyId: second, Plaintext: message }), "DisabledException"),
  );
  await send(kms.EnableKeyCommand, { KeyId: second });

  emit(
    "not_found",
    await expectError(
      () => send(kms.DescribeKeyCommand, { KeyId: "11111111-2222-3333-4444-555555555555" }),
      "NotFoundException",
    ),
  );

  // KMS's model has no type for these two: the SDK gives its base KMSServiceException with AWS's code as name
  const wrongSecret = client(env.KMS_ACCESS_KEY, `not-${env.KMS_SECRET_KEY}`, new CountingAgent());
  emit(
    "wrong_secret",
    await expectError(() => wrongSecret.send(new kms.ListKeysCommand({})), "KMSServiceException"),
  );
  const unknownKey = client("AKUNKNOWN0000000000", env.KMS_SECRET_KEY, new CountingAgent());
  emit(
    "unknown_access_key",
    await expectError(() => unknownKey.send(new kms.ListKeysCommand({})), "KMSServiceException"),
  );

  // A client whose clock is 20 minutes behind: refused ("Signature expired"); with retries the SDK corrects its
  // clock offset from the answer's Date header and its second attempt is accepted.
  const behind = { systemClockOffset: -20 * 60 * 1000 };
  const skewedOnce = client(env.KMS_ACCESS_KEY, env.KMS_SECRET_KEY, new CountingAgent(), { ...behind, maxAttempts: 1 });
  const skewed = client(env.KMS_ACCESS_KEY, env.KMS_SECRET_KEY, new CountingAgent(), behind);
  const refused = await expectError(() => skewedOnce.send(new kms.ListKeysCommand({})), "KMSServiceException");
  const corrected = await skewed.send(new kms.ListKeysCommand({}));
  emit("clock_skew", {
    refused,
    attempts: corrected.$metadata.attempts,
    corrected_offset_seconds: skewed.config.systemClockOffset / 1000,
  });

  const scheduled = await send(kms.ScheduleKeyDeletionCommand, { KeyId: second, PendingWindowInDays: 7 });
  const cancelled = await send(kms.CancelKeyDeletionCommand, { KeyId: second });
  const afterCancel = (await send(kms.DescribeKeyCommand, { KeyId: second })).KeyMetadata;
  emit("deletion", {
    key_state: scheduled.KeyState,
    pending_days: scheduled.PendingWindowInDays,
    deletion_date: scheduled.DeletionDate.getTime() / 1000,
    cancelled_key_id: cancelled.KeyId,
    state_after_cancel: afterCancel.KeyState,
  });

  // 64 Encrypt/Decrypt round trips at once on one client whose pool holds 16 sockets: parallel connections,
  // each kept alive for the queued requests
  const poolAgent = new CountingAgent(16);
  const pooled = client(env.KMS_ACCESS_KEY, env.KMS_SECRET_KEY, poolAgent);
  const results = await Promise.allSettled(
    Array.from({ length: 64 }, async (_, i) => {
      const text = new TextEncoder().encode(`round trip ${i}`);
      const sealedOne = await pooled.send(new kms.EncryptCommand({ KeyId: symmetric, Plaintext: text }));
      const openedOne = await pooled.send(new kms.DecryptCommand({ CiphertextBlob: sealedOne.CiphertextBlob }));
      if (!equal(openedOne.Plaintext, text)) throw new Error("round trip changed the plaintext");
    }),
  );
  emit("concurrent", {
    round_trips: results.length,
    failures: results.filter((result) => result.status === "rejected").length,
    dials: poolAgent.dials,
    workers: 16,
  });
  poolAgent.destroy();

  // the same context in every scenario and in the Python test (see the Go scenario)
  const interopContext = { tenant: "ünïcødé ключ 😀", "b<&>": '"quoted" \\ slash', zeta: "last", alpha: "first" };
  const fromBoto = await send(kms.DecryptCommand, {
    CiphertextBlob: Buffer.from(env.KMS_INTEROP_CIPHERTEXT, "base64"),
    EncryptionContext: interopContext,
  });
  const forBoto = await send(kms.EncryptCommand, {
    KeyId: env.KMS_INTEROP_KEY,
    Plaintext: fromBoto.Plaintext,
    EncryptionContext: interopContext,
  });
  emit("interop", {
    plaintext: Buffer.from(fromBoto.Plaintext).toString("utf8"),
    ciphertext: Buffer.from(forBoto.CiphertextBlob).toString("base64"),
  });

  // KMS's public keys with Node's own crypto: the ECDSA signature (DER) verifies, OAEP SHA-256 opens in KMS
  const eccPublic = (await send(kms.GetPublicKeyCommand, { KeyId: signing.KeyId })).PublicKey;
  const eccKey = crypto.createPublicKey({ key: Buffer.from(eccPublic), format: "der", type: "spki" });
  const localVerify = crypto.verify("sha256", message, eccKey, Buffer.from(signature.Signature));
  const rsaKeyId = (await send(kms.CreateKeyCommand, { KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT" })).KeyMetadata
    .KeyId;
  const rsaDer = await send(kms.GetPublicKeyCommand, { KeyId: rsaKeyId });
  const rsaKey = crypto.createPublicKey({ key: Buffer.from(rsaDer.PublicKey), format: "der", type: "spki" });
  const rsaSealed = crypto.publicEncrypt(
    { key: rsaKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    message,
  );
  const rsaOpened = await send(kms.DecryptCommand, {
    KeyId: rsaKeyId,
    CiphertextBlob: rsaSealed,
    EncryptionAlgorithm: "RSAES_OAEP_SHA_256",
  });
  emit("public_keys", {
    ecdsa_local_verify: localVerify,
    rsa_oaep_round_trip: equal(rsaOpened.Plaintext, message),
    rsa_encryption_algorithms: rsaDer.EncryptionAlgorithms,
  });

  emit("connections", { dials: agent.dials });
  agent.destroy();
}

main().catch((error) => {
  process.stderr.write(`unexpected: ${error.name}: ${error.message}\n${error.stack}\n`);
  process.exit(1);
});
