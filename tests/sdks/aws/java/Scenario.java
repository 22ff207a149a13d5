// The AWS SDK for Java v2 against the kubekms server's AWS JSON 1.1 wire: one JSON line per step on stdout.
//
// Reads KMS_ENDPOINT, KMS_ACCESS_KEY, KMS_SECRET_KEY, KMS_REGION, and KMS_INTEROP_KEY with KMS_INTEROP_CIPHERTEXT
// (a key and a ciphertext boto3 made) from the environment; the Python test
// (tests/sdks/test_aws_sdks.py) asserts on what it prints. An unexpected error ends the program (exit 1).
// Run as a single source file: java -cp <the pom's classpath> Scenario.java

import java.net.URI;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import software.amazon.awssdk.core.interceptor.Context;
import software.amazon.awssdk.core.interceptor.ExecutionAttributes;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.kms.KmsClient;
import software.amazon.awssdk.services.kms.KmsClientBuilder;
import software.amazon.awssdk.core.SdkGlobalTime;
import software.amazon.awssdk.services.kms.model.*;

public final class Scenario {
    private static final Map<String, String> ENV = System.getenv();

    public static void main(String[] args) {
        try (KmsClient c = client(ENV.get("KMS_ACCESS_KEY"), ENV.get("KMS_SECRET_KEY"))) {
            run(c);
        } catch (RuntimeException error) {
            System.err.println("unexpected: " + error);
            error.printStackTrace();
            System.exit(1);
        }
    }

    static KmsClient client(String accessKey, String secret) {
        return builder(accessKey, secret).build();
    }

    static KmsClientBuilder builder(String accessKey, String secret) {
        return KmsClient.builder()
                .region(Region.of(ENV.get("KMS_REGION")))
                .endpointOverride(URI.create(ENV.get("KMS_ENDPOINT")))
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(accessKey, secret)));
    }

    static void run(KmsClient c) {
        String suffix = Long.toString(System.nanoTime());
        KeyMetadata created = c.createKey(b -> b.description("java sdk").tags(Tag.builder().tagKey("team").tagValue("sdk").build())).keyMetadata();
        String symmetric = created.keyId();
        emit("create_symmetric", "key_id", symmetric, "arn", created.arn(), "key_state", created.keyStateAsString(),
                "key_spec", created.keySpecAsString(), "enabled", created.enabled(), "creation_date", epoch(created.creationDate()));
        String second = c.createKey(b -> {}).keyMetadata().keyId();

        KeyMetadata hmacKey = c.createKey(b -> b.keySpec(KeySpec.HMAC_256).keyUsage(KeyUsageType.GENERATE_VERIFY_MAC)).keyMetadata();
        emit("create_hmac", "key_id", hmacKey.keyId(), "key_spec", hmacKey.keySpecAsString(), "mac_algorithms", hmacKey.macAlgorithmsAsStrings());
        KeyMetadata signing = c.createKey(b -> b.keySpec(KeySpec.ECC_NIST_P256).keyUsage(KeyUsageType.SIGN_VERIFY)).keyMetadata();
        emit("create_ecc", "key_id", signing.keyId(), "key_spec", signing.keySpecAsString(), "signing_algorithms", signing.signingAlgorithmsAsStrings());

        KeyMetadata described = c.describeKey(b -> b.keyId(symmetric)).keyMetadata();
        emit("describe", "key_id", described.keyId(), "key_state", described.keyStateAsString(), "origin", described.originAsString(),
                "key_manager", described.keyManagerAsString(), "description", described.description(),
                "creation_date", epoch(described.creationDate()), "encryption_algorithms", described.encryptionAlgorithmsAsStrings(),
                "account", described.awsAccountId());

        int pages = 0;
        List<String> listed = new ArrayList<>();
        for (ListKeysResponse page : c.listKeysPaginator(b -> b.limit(1))) {
            pages++;
            page.keys().forEach(key -> listed.add(key.keyId()));
        }
        emit("list_keys", "pages", pages, "key_ids", listed);

        String alias = "alias/java-sdk-" + suffix;
        c.createAlias(b -> b.aliasName(alias).targetKeyId(symmetric));
        List<String> names = new ArrayList<>();
        c.listAliases(b -> b.keyId(symmetric)).aliases().forEach(entry -> names.add(entry.aliasName()));
        emit("aliases", "alias", alias, "names", names);

        c.tagResource(b -> b.keyId(symmetric).tags(Tag.builder().tagKey("env").tagValue("test").build()));
        Map<String, Object> tags = new TreeMap<>();
        c.listResourceTags(b -> b.keyId(symmetric)).tags().forEach(tag -> tags.put(tag.tagKey(), tag.tagValue()));
        emit("tags", "tags", tags);

        Map<String, String> context = Map.of("purpose", "sdk-test", "lang", "java");
        GenerateDataKeyResponse dataKey = c.generateDataKey(b -> b.keyId(alias).keySpec(DataKeySpec.AES_256).encryptionContext(context));
        DecryptResponse opened = c.decrypt(b -> b.ciphertextBlob(dataKey.ciphertextBlob()).encryptionContext(context));
        GenerateDataKeyWithoutPlaintextResponse withoutPlaintext = c.generateDataKeyWithoutPlaintext(b -> b.keyId(symmetric).numberOfBytes(24));
        DecryptResponse openedWithout = c.decrypt(b -> b.ciphertextBlob(withoutPlaintext.ciphertextBlob()).keyId(symmetric));
        emit("data_keys", "plaintext_len", dataKey.plaintext().asByteArray().length,
                "round_trip", dataKey.plaintext().equals(opened.plaintext()), "key_id", dataKey.keyId(),
                "without_plaintext_len", openedWithout.plaintext().asByteArray().length);

        SdkBytes message = SdkBytes.fromString("hello from the java sdk", StandardCharsets.UTF_8);
        EncryptResponse sealed = c.encrypt(b -> b.keyId(symmetric).plaintext(message).encryptionContext(context));
        DecryptResponse decrypted = c.decrypt(b -> b.ciphertextBlob(sealed.ciphertextBlob()).encryptionContext(context));
        emit("encrypt_decrypt", "round_trip", decrypted.plaintext().equals(message), "key_id", decrypted.keyId(),
                "algorithm", decrypted.encryptionAlgorithmAsString(),
                "wrong_context", expectError(InvalidCiphertextException.class,
                        () -> c.decrypt(b -> b.ciphertextBlob(sealed.ciphertextBlob()).encryptionContext(Map.of("purpose", "other")))));

        ReEncryptResponse reencrypted = c.reEncrypt(b -> b.ciphertextBlob(sealed.ciphertextBlob()).sourceEncryptionContext(context).destinationKeyId(second));
        DecryptResponse reopened = c.decrypt(b -> b.ciphertextBlob(reencrypted.ciphertextBlob()));
        emit("reencrypt", "source_key_id", reencrypted.sourceKeyId(), "key_id", reencrypted.keyId(),
                "round_trip", reopened.plaintext().equals(message));

        emit("random", "len", c.generateRandom(b -> b.numberOfBytes(32)).plaintext().asByteArray().length);

        SignResponse signature = c.sign(b -> b.keyId(signing.keyId()).message(message).messageType(MessageType.RAW)
                .signingAlgorithm(SigningAlgorithmSpec.ECDSA_SHA_256));
        VerifyResponse verified = c.verify(b -> b.keyId(signing.keyId()).message(message).messageType(MessageType.RAW)
                .signature(signature.signature()).signingAlgorithm(SigningAlgorithmSpec.ECDSA_SHA_256));
        emit("sign_verify", "valid", verified.signatureValid(), "algorithm", signature.signingAlgorithmAsString(),
                "tampered", expectError(KmsInvalidSignatureException.class,
                        () -> c.verify(b -> b.keyId(signing.keyId()).message(SdkBytes.fromUtf8String("another message"))
                                .messageType(MessageType.RAW).signature(signature.signature())
                                .signingAlgorithm(SigningAlgorithmSpec.ECDSA_SHA_256))));

        GenerateMacResponse mac = c.generateMac(b -> b.keyId(hmacKey.keyId()).message(message).macAlgorithm(MacAlgorithmSpec.HMAC_SHA_256));
        VerifyMacResponse macValid = c.verifyMac(b -> b.keyId(hmacKey.keyId()).message(message).mac(mac.mac())
                .macAlgorithm(MacAlgorithmSpec.HMAC_SHA_256));
        emit("mac", "len", mac.mac().asByteArray().length, "valid", macValid.macValid());

        c.enableKeyRotation(b -> b.keyId(symmetric).rotationPeriodInDays(90));
        GetKeyRotationStatusResponse status = c.getKeyRotationStatus(b -> b.keyId(symmetric));
        c.rotateKeyOnDemand(b -> b.keyId(symmetric));
        ListKeyRotationsResponse rotations = c.listKeyRotations(b -> b.keyId(symmetric));
        List<String> rotationTypes = new ArrayList<>();
        rotations.rotations().forEach(rotation -> rotationTypes.add(rotation.rotationTypeAsString()));
        DecryptResponse afterRotation = c.decrypt(b -> b.ciphertextBlob(sealed.ciphertextBlob()).encryptionContext(context));
        emit("rotation", "enabled", status.keyRotationEnabled(), "period", status.rotationPeriodInDays(),
                "next_rotation_date", epoch(status.nextRotationDate()), "rotation_types", rotationTypes,
                "truncated", rotations.truncated(), "old_ciphertext_opens", afterRotation.plaintext().equals(message));

        Map<String, Object> dryRun = expectError(DryRunOperationException.class,
                () -> c.createGrant(b -> b.keyId(symmetric).granteePrincipal("arn:aws:iam::default:user/someone")
                        .operations(GrantOperation.ENCRYPT).dryRun(true)));
        dryRun.put("grants", c.listGrants(b -> b.keyId(symmetric)).grants().size());
        emitMap("dry_run", dryRun);

        c.disableKey(b -> b.keyId(second));
        emitMap("disabled", expectError(DisabledException.class, () -> c.encrypt(b -> b.keyId(second).plaintext(message))));
        c.enableKey(b -> b.keyId(second));

        emitMap("not_found", expectError(NotFoundException.class,
                () -> c.describeKey(b -> b.keyId("11111111-2222-3333-4444-555555555555"))));

        // KMS's model has no class for these two: the SDK throws its KmsException with AWS's error code
        try (KmsClient wrongSecret = client(ENV.get("KMS_ACCESS_KEY"), "not-" + ENV.get("KMS_SECRET_KEY"))) {
            emitMap("wrong_secret", expectError(KmsException.class, () -> wrongSecret.listKeys()));
        }
        try (KmsClient unknownKey = client("AKUNKNOWN0000000000", ENV.get("KMS_SECRET_KEY"))) {
            emitMap("unknown_access_key", expectError(KmsException.class, () -> unknownKey.listKeys()));
        }

        // A clock 20 minutes behind: refused ("Signature expired"); with retries the SDK adjusts its clock offset
        // from the answer's Date header and its retry is accepted.
        SdkGlobalTime.setGlobalTimeOffset(20 * 60);
        AtomicInteger attempts = new AtomicInteger();
        ExecutionInterceptor counter = new ExecutionInterceptor() {
            @Override
            public void beforeTransmission(Context.BeforeTransmission context, ExecutionAttributes attributes) {
                attempts.incrementAndGet();
            }
        };
        try (KmsClient skewedOnce = builder(ENV.get("KMS_ACCESS_KEY"), ENV.get("KMS_SECRET_KEY"))
                        .overrideConfiguration(o -> o.retryStrategy(r -> r.maxAttempts(1))).build();
                KmsClient skewed = builder(ENV.get("KMS_ACCESS_KEY"), ENV.get("KMS_SECRET_KEY"))
                        .overrideConfiguration(o -> o.addExecutionInterceptor(counter)).build()) {
            Map<String, Object> refused = expectError(KmsException.class, () -> skewedOnce.listKeys());
            skewed.listKeys();
            emit("clock_skew", "refused", refused, "attempts", attempts.get());
        } finally {
            SdkGlobalTime.setGlobalTimeOffset(0);
        }

        // the same context in every scenario and in the Python test (see the Go scenario)
        Map<String, String> interopContext = Map.of("tenant", "ünïcødé ключ \uD83D\uDE00", "b<&>", "\"quoted\" \\ slash",
                "zeta", "last", "alpha", "first");
        DecryptResponse fromBoto = c.decrypt(b -> b.ciphertextBlob(SdkBytes.fromByteArray(
                Base64.getDecoder().decode(ENV.get("KMS_INTEROP_CIPHERTEXT")))).encryptionContext(interopContext));
        EncryptResponse forBoto = c.encrypt(b -> b.keyId(ENV.get("KMS_INTEROP_KEY")).plaintext(fromBoto.plaintext())
                .encryptionContext(interopContext));
        emit("interop", "plaintext", fromBoto.plaintext().asUtf8String(),
                "ciphertext", Base64.getEncoder().encodeToString(forBoto.ciphertextBlob().asByteArray()));

        // KMS's public keys with Java's own crypto: the ECDSA signature (DER) verifies; RSAES_OAEP_SHA_256 is OAEP
        // with SHA-256 for both the label hash and MGF1 (Java's "OAEPWithSHA-256AndMGF1Padding" alone means MGF1
        // SHA-1, which KMS would not open)
        try {
            PublicKey eccKey = KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(
                    c.getPublicKey(b -> b.keyId(signing.keyId())).publicKey().asByteArray()));
            Signature verifier = Signature.getInstance("SHA256withECDSA");
            verifier.initVerify(eccKey);
            verifier.update(message.asByteArray());
            boolean localVerify = verifier.verify(signature.signature().asByteArray());
            String rsaKeyId = c.createKey(b -> b.keySpec(KeySpec.RSA_2048).keyUsage(KeyUsageType.ENCRYPT_DECRYPT)).keyMetadata().keyId();
            GetPublicKeyResponse rsaDer = c.getPublicKey(b -> b.keyId(rsaKeyId));
            PublicKey rsaKey = KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(rsaDer.publicKey().asByteArray()));
            Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPPadding");
            oaep.init(Cipher.ENCRYPT_MODE, rsaKey, new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT));
            SdkBytes rsaSealed = SdkBytes.fromByteArray(oaep.doFinal(message.asByteArray()));
            DecryptResponse rsaOpened = c.decrypt(b -> b.keyId(rsaKeyId).ciphertextBlob(rsaSealed)
                    .encryptionAlgorithm(EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256));
            emit("public_keys", "ecdsa_local_verify", localVerify, "rsa_oaep_round_trip", rsaOpened.plaintext().equals(message),
                    "rsa_encryption_algorithms", rsaDer.encryptionAlgorithmsAsStrings());
        } catch (GeneralSecurityException error) {
            throw new IllegalStateException(error);
        }

        ScheduleKeyDeletionResponse scheduled = c.scheduleKeyDeletion(b -> b.keyId(second).pendingWindowInDays(7));
        CancelKeyDeletionResponse cancelled = c.cancelKeyDeletion(b -> b.keyId(second));
        KeyMetadata afterCancel = c.describeKey(b -> b.keyId(second)).keyMetadata();
        emit("deletion", "key_state", scheduled.keyStateAsString(), "pending_days", scheduled.pendingWindowInDays(),
                "deletion_date", epoch(scheduled.deletionDate()), "cancelled_key_id", cancelled.keyId(),
                "state_after_cancel", afterCancel.keyStateAsString());
    }

    static Map<String, Object> expectError(Class<? extends AwsServiceException> type, Supplier<?> call) {
        Map<String, Object> fields = new LinkedHashMap<>();
        try {
            call.get();
            fields.put("error", false);
        } catch (AwsServiceException error) {
            fields.put("error", true);
            fields.put("typed", type.isInstance(error));
            fields.put("class", error.getClass().getSimpleName());
            fields.put("code", error.awsErrorDetails().errorCode());
            fields.put("message", error.awsErrorDetails().errorMessage());
            fields.put("status", error.statusCode());
            fields.put("retryable", error.retryable());
        }
        return fields;
    }

    static double epoch(Instant instant) {
        return instant == null ? 0 : instant.getEpochSecond() + instant.getNano() / 1e9;
    }

    static void emit(String step, Object... pairs) {
        Map<String, Object> fields = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            fields.put((String) pairs[i], pairs[i + 1]);
        }
        emitMap(step, fields);
    }

    static void emitMap(String step, Map<String, Object> fields) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("step", step);
        line.putAll(fields);
        System.out.println(json(line));
    }

    // A small JSON writer: the scenario's values are strings, numbers, booleans, lists and maps.
    static String json(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof String text) {
            StringBuilder out = new StringBuilder("\"");
            for (char ch : text.toCharArray()) {
                switch (ch) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    default -> {
                        if (ch < 0x20) {
                            out.append(String.format("\\u%04x", (int) ch));
                        } else {
                            out.append(ch);
                        }
                    }
                }
            }
            return out.append('"').toString();
        }
        if (value instanceof Number || value instanceof Boolean) {
            return value.toString();
        }
        if (value instanceof Map<?, ?> map) {
            List<String> parts = new ArrayList<>();
            map.forEach((k, v) -> parts.add(json(k.toString()) + ":" + json(v)));
            return "{" + String.join(",", parts) + "}";
        }
        if (value instanceof Iterable<?> items) {
            List<String> parts = new ArrayList<>();
            Iterator<?> iterator = items.iterator();
            while (iterator.hasNext()) {
                parts.add(json(iterator.next()));
            }
            return "[" + String.join(",", parts) + "]";
        }
        return json(value.toString());
    }
}
