// Huawei's official Java SDK (com.huaweicloud.sdk:huaweicloud-sdk-kms), unchanged, against a kubekms server.
//
// Run as a single source file: java -cp <pom's classpath> Scenario.java. Endpoint and credentials come from
// the environment (KMS_ENDPOINT, KMS_PROJECT_ID, KMS_ACCESS_KEY, KMS_SECRET_KEY, KMS_PREFIX). Each step prints one JSON line:
// {"step": ..., "ok": {...}} or {"step": ..., "error": {...}}, the same steps as the Go program. No key
// material is printed: data keys are compared here and only the outcome is printed.

import com.fasterxml.jackson.databind.ObjectMapper;
import com.huaweicloud.sdk.core.auth.BasicCredentials;
import com.huaweicloud.sdk.core.exception.ServiceResponseException;
import com.huaweicloud.sdk.kms.v2.KmsClient;
import com.huaweicloud.sdk.kms.v2.model.*;

import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.security.interfaces.RSAPrivateCrtKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.RSAPublicKeySpec;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class Scenario {
    interface Step {
        Map<String, Object> run() throws Exception;
    }

    static final ObjectMapper JSON = new ObjectMapper();
    static final HexFormat HEX = HexFormat.of();

    static void step(String name, Step body) throws Exception {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("step", name);
        try {
            line.put("ok", body.run());
        } catch (ServiceResponseException e) {
            line.put("error", Map.of("type", e.getClass().getSimpleName(), "status", e.getHttpStatusCode(),
                    "code", String.valueOf(e.getErrorCode()), "message", String.valueOf(e.getErrorMsg()),
                    "request_id", String.valueOf(e.getRequestId())));
        } catch (RuntimeException e) {
            line.put("error", Map.of("type", e.getClass().getSimpleName(), "message", String.valueOf(e.getMessage())));
        }
        System.out.println(JSON.writeValueAsString(line));
        System.out.flush();
    }

    static KmsClient client(String ak, String sk) {
        BasicCredentials credentials = new BasicCredentials().withAk(ak).withSk(sk)
                .withProjectId(System.getenv("KMS_PROJECT_ID"));
        return KmsClient.newBuilder().withCredential(credentials).withEndpoints(List.of(System.getenv("KMS_ENDPOINT")))
                .build();
    }

    static OperateKeyRequestBody keyBody(String keyId) {
        return new OperateKeyRequestBody().withKeyId(keyId);
    }

    static String errorCode(Step body) throws Exception {
        try {
            body.run();
            return "";
        } catch (ServiceResponseException e) {
            return e.getErrorCode();
        }
    }

    public static void main(String[] args) throws Exception {
        KmsClient c = client(System.getenv("KMS_ACCESS_KEY"), System.getenv("KMS_SECRET_KEY"));
        String prefix = System.getenv("KMS_PREFIX");
        List<String> keyIds = new ArrayList<>();

        for (String suffix : List.of("a", "b", "c")) {
            step("create-key-" + suffix, () -> {
                CreateKeyResponse answer = c.createKey(new CreateKeyRequest().withBody(new CreateKeyRequestBody()
                        .withKeyAlias(prefix + "-" + suffix).withKeyDescription("made by the Java SDK")));
                keyIds.add(answer.getKeyInfo().getKeyId());
                return Map.of("key_id", answer.getKeyInfo().getKeyId(), "domain_id", answer.getKeyInfo().getDomainId(),
                        "status", answer.getHttpStatusCode());
            });
        }
        if (keyIds.size() != 3) {
            System.exit(1);
        }
        String keyId = keyIds.get(0);

        step("list-keys-paged", () -> {
            List<Object> pages = new ArrayList<>();
            List<String> listed = new ArrayList<>();
            String marker = null;
            while (pages.size() < 100) {
                ListKeysResponse answer = c.listKeys(new ListKeysRequest().withBody(
                        new ListKeysRequestBody().withLimit("2").withMarker(marker)));
                listed.addAll(answer.getKeys());
                int details = answer.getKeyDetails() == null ? 0 : answer.getKeyDetails().size();
                pages.add(Map.of("keys", answer.getKeys().size(), "details", details,
                        "truncated", answer.getTruncated().getValue(), "total", answer.getTotal()));
                if (!"true".equals(answer.getTruncated().getValue())) {
                    break;
                }
                marker = answer.getNextMarker();
            }
            return Map.of("pages", pages, "listed", listed);
        });

        step("describe-key", () -> {
            KeyDetails info = c.listKeyDetail(new ListKeyDetailRequest().withBody(keyBody(prefix + "-a"))).getKeyInfo();
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("key_id", info.getKeyId());
            out.put("key_alias", info.getKeyAlias());
            out.put("key_state", info.getKeyState());
            out.put("key_spec", info.getKeySpec().getValue());
            out.put("key_usage", info.getKeyUsage().getValue());
            out.put("origin", info.getOrigin().getValue());
            out.put("key_description", info.getKeyDescription());
            out.put("creation_date", info.getCreationDate());
            out.put("key_rotation_enabled", info.getKeyRotationEnabled());
            return out;
        });

        byte[][] dataKey = new byte[1][];
        String[] dataKeyCipher = new String[1];
        step("create-datakey", () -> {
            CreateDatakeyResponse answer = c.createDatakey(new CreateDatakeyRequest().withBody(
                    new CreateDatakeyRequestBody().withKeyId(keyId).withDatakeyLength("256")));
            dataKey[0] = HEX.parseHex(answer.getPlainText());
            dataKeyCipher[0] = answer.getCipherText();
            return Map.of("key_id", answer.getKeyId(), "plain_bytes", dataKey[0].length,
                    "cipher_text_set", !dataKeyCipher[0].isEmpty());
        });

        step("create-datakey-without-plaintext", () -> {
            CreateDatakeyWithoutPlaintextResponse answer = c.createDatakeyWithoutPlaintext(
                    new CreateDatakeyWithoutPlaintextRequest().withBody(new CreateDatakeyRequestBody().withKeyId(keyId)
                            .withKeySpec(CreateDatakeyRequestBody.KeySpecEnum.AES_128)));
            return Map.of("key_id", answer.getKeyId(), "cipher_text_set", !answer.getCipherText().isEmpty());
        });

        step("decrypt-datakey", () -> {
            DecryptDatakeyResponse answer = c.decryptDatakey(new DecryptDatakeyRequest().withBody(
                    new DecryptDatakeyRequestBody().withKeyId(keyId).withCipherText(dataKeyCipher[0])
                            .withDatakeyCipherLength("32")));
            return Map.of("matches", Arrays.equals(HEX.parseHex(answer.getDataKey()), dataKey[0]),
                    "datakey_length", answer.getDatakeyLength());
        });

        step("encrypt-decrypt-datakey", () -> {
            byte[] own = new byte[32];
            new SecureRandom().nextBytes(own);
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(own);
            byte[] withDigest = Arrays.copyOf(own, 64);
            System.arraycopy(digest, 0, withDigest, 32, 32);
            EncryptDatakeyResponse encrypted = c.encryptDatakey(new EncryptDatakeyRequest().withBody(
                    new EncryptDatakeyRequestBody().withKeyId(keyId).withPlainText(HEX.formatHex(withDigest))
                            .withDatakeyPlainLength("32").withAdditionalAuthenticatedData("tenant=java")));
            DecryptDatakeyResponse decrypted = c.decryptDatakey(new DecryptDatakeyRequest().withBody(
                    new DecryptDatakeyRequestBody().withKeyId(keyId).withCipherText(encrypted.getCipherText())
                            .withDatakeyCipherLength("32").withAdditionalAuthenticatedData("tenant=java")));
            String wrongAad = errorCode(() -> {
                c.decryptDatakey(new DecryptDatakeyRequest().withBody(new DecryptDatakeyRequestBody()
                        .withKeyId(keyId).withCipherText(encrypted.getCipherText()).withDatakeyCipherLength("32")
                        .withAdditionalAuthenticatedData("tenant=other")));
                return null;
            });
            return Map.of("encrypt_datakey_length", encrypted.getDatakeyLength(),
                    "matches", Arrays.equals(HEX.parseHex(decrypted.getDataKey()), own),
                    "digest_matches", HEX.formatHex(digest).equals(decrypted.getDatakeyDgst()),
                    "wrong_aad_code", wrongAad);
        });

        step("encrypt-decrypt-data", () -> {
            EncryptDataResponse encrypted = c.encryptData(new EncryptDataRequest().withBody(new EncryptDataRequestBody()
                    .withKeyId(keyId).withPlainText("hello from Java").withAdditionalAuthenticatedData("ctx")));
            boolean isBase64;
            try {
                Base64.getDecoder().decode(encrypted.getCipherText());
                isBase64 = true;
            } catch (IllegalArgumentException e) {
                isBase64 = false;
            }
            DecryptDataResponse decrypted = c.decryptData(new DecryptDataRequest().withBody(new DecryptDataRequestBody()
                    .withCipherText(encrypted.getCipherText()).withAdditionalAuthenticatedData("ctx")));
            return Map.of("key_id", decrypted.getKeyId(), "plain_text", decrypted.getPlainText(),
                    "plain_text_base64", decrypted.getPlainTextBase64(), "cipher_is_base64", isBase64);
        });

        step("gen-random", () -> {
            String data = c.createRandom(new CreateRandomRequest().withBody(
                    new GenRandomRequestBody().withRandomDataLength("256"))).getRandomData();
            boolean isHex = data.chars().allMatch(ch -> Character.digit(ch, 16) >= 0);
            return Map.of("hex_chars", data.length(), "is_hex", isHex);
        });

        step("disable-key", () -> Map.of("key_state",
                c.disableKey(new DisableKeyRequest().withBody(keyBody(keyId))).getKeyInfo().getKeyState()));
        step("datakey-on-disabled-key", () -> {
            c.createDatakey(new CreateDatakeyRequest().withBody(new CreateDatakeyRequestBody().withKeyId(keyId)));
            return Map.of();
        });
        step("enable-key", () -> Map.of("key_state",
                c.enableKey(new EnableKeyRequest().withBody(keyBody(keyId))).getKeyInfo().getKeyState()));

        String doomed = keyIds.get(2);
        step("schedule-key-deletion", () -> {
            DeleteKeyResponse answer = c.deleteKey(new DeleteKeyRequest().withBody(
                    new ScheduleKeyDeletionRequestBody().withKeyId(doomed).withPendingDays("7")));
            KeyDetails described = c.listKeyDetail(new ListKeyDetailRequest().withBody(keyBody(doomed))).getKeyInfo();
            return Map.of("key_state", answer.getKeyState(), "described_state", described.getKeyState(),
                    "scheduled_deletion_date", described.getScheduledDeletionDate());
        });
        step("cancel-key-deletion", () -> Map.of("key_state",
                c.cancelKeyDeletion(new CancelKeyDeletionRequest().withBody(keyBody(doomed))).getKeyState()));

        Step rotationStatus = () -> {
            ShowKeyRotationStatusResponse answer = c.showKeyRotationStatus(
                    new ShowKeyRotationStatusRequest().withBody(keyBody(keyId)));
            Map<String, Object> status = new LinkedHashMap<>();
            status.put("enabled", answer.getKeyRotationEnabled());
            status.put("interval", answer.getRotationInterval());
            status.put("rotations", answer.getNumberOfRotations());
            return status;
        };
        step("enable-key-rotation", () -> {
            c.enableKeyRotation(new EnableKeyRotationRequest().withBody(keyBody(keyId)));
            return rotationStatus.run();
        });
        step("update-key-rotation-interval", () -> {
            c.updateKeyRotationInterval(new UpdateKeyRotationIntervalRequest().withBody(
                    new UpdateKeyRotationIntervalRequestBody().withKeyId(keyId).withRotationInterval(90)));
            return rotationStatus.run();
        });
        step("disable-key-rotation", () -> {
            c.disableKeyRotation(new DisableKeyRotationRequest().withBody(keyBody(keyId)));
            return rotationStatus.run();
        });

        Step listTags = () -> {
            Map<String, Object> tags = new LinkedHashMap<>();
            for (TagItem tag : c.showKmsTags(new ShowKmsTagsRequest().withKeyId(keyId)).getTags()) {
                tags.put(tag.getKey(), tag.getValue());
            }
            return Map.of("tags", tags);
        };
        Map<String, String> tags = Map.of("team", "blue", "a/b:c", "slash");
        step("create-kms-tag", () -> {
            for (Map.Entry<String, String> tag : tags.entrySet()) {
                c.createKmsTag(new CreateKmsTagRequest().withKeyId(keyId).withBody(new CreateKmsTagRequestBody()
                        .withTag(new TagItem().withKey(tag.getKey()).withValue(tag.getValue()))));
            }
            return listTags.run();
        });
        step("delete-tag", () -> {
            for (String key : tags.keySet()) {
                c.deleteTag(new DeleteTagRequest().withKeyId(keyId).withKey(key));
            }
            return listTags.run();
        });

        String alias = prefix + "/second:x"; // "/" and ":" in a body, then in list-aliases' query
        java.util.function.Function<String, List<String>> aliasesOf = id -> {
            List<String> aliases = new ArrayList<>();
            for (ListAliasResponseBody page : c.listAliases(
                    new ListAliasesRequest().withKeyId(id).withLimit("10")).getBody()) {
                for (AliasEntity entity : page.getAliases()) {
                    aliases.add(entity.getAlias());
                }
            }
            return aliases;
        };
        step("create-alias", () -> {
            c.createAlias(new CreateAliasRequest().withBody(new CreateAliasRequestBody().withKeyId(keyId).withAlias(alias)));
            return Map.of("aliases", aliasesOf.apply(keyId));
        });
        step("associate-alias", () -> {
            AssociateAliasResponse answer = c.associateAlias(new AssociateAliasRequest().withBody(
                    new AssociateAliasRequestBody().withAlias(alias).withTargetKeyId(keyIds.get(1))));
            return Map.of("key_id", answer.getKeyId(), "aliases", aliasesOf.apply(alias));
        });
        step("delete-alias", () -> {
            c.deleteAlias(new DeleteAliasRequest().withBody(
                    new DeleteAliasRequestBody().withKeyId(keyIds.get(1)).withAliases(List.of(alias))));
            return Map.of("aliases", aliasesOf.apply(keyIds.get(1)));
        });

        step("grants", () -> {
            String grantId = c.createGrant(new CreateGrantRequest().withBody(new CreateGrantRequestBody().withKeyId(keyId)
                    .withGranteePrincipal("grantee1").withOperations(List.of("create-datakey", "decrypt-datakey"))
                    .withName("java-grant").withRetiringPrincipal("grantee2"))).getGrantId();
            ListGrantsResponse listed = c.listGrants(new ListGrantsRequest().withBody(
                    new ListGrantsRequestBody().withKeyId(keyId)));
            List<Object> grants = new ArrayList<>();
            for (Grants entry : listed.getGrants()) {
                grants.add(Map.of("grant_id_matches", grantId.equals(entry.getGrantId()),
                        "grantee", entry.getGranteePrincipal(), "type", entry.getGranteePrincipalType().getValue(),
                        "operations", entry.getOperations(), "name", entry.getName(),
                        "retiring", entry.getRetiringPrincipal()));
            }
            c.cancelGrant(new CancelGrantRequest().withBody(
                    new RevokeGrantRequestBody().withKeyId(keyId).withGrantId(grantId)));
            int after = c.listGrants(new ListGrantsRequest().withBody(new ListGrantsRequestBody().withKeyId(keyId)))
                    .getTotal();
            return Map.of("grants", grants, "total", listed.getTotal(), "truncated", listed.getTruncated().getValue(),
                    "total_after_revoke", after);
        });

        step("user-instances", () -> Map.of("instance_num",
                c.showUserInstances(new ShowUserInstancesRequest()).getInstanceNum()));
        step("user-quotas", () -> {
            Map<String, Object> quotas = new LinkedHashMap<>();
            for (Resources resource : c.showUserQuotas(new ShowUserQuotasRequest()).getQuotas().getResources()) {
                quotas.put(resource.getType().getValue(), Map.of("used", resource.getUsed(), "quota", resource.getQuota()));
            }
            return Map.of("quotas", quotas);
        });

        // after the account calls: these keys are not AES_256 ones, but they count as instances
        step("sign-verify", () -> {
            String ecKey = c.createKey(new CreateKeyRequest().withBody(new CreateKeyRequestBody()
                    .withKeyAlias(prefix + "-ec").withKeySpec(CreateKeyRequestBody.KeySpecEnum.EC_P256)
                    .withKeyUsage(CreateKeyRequestBody.KeyUsageEnum.SIGN_VERIFY))).getKeyInfo().getKeyId();
            byte[] digest = MessageDigest.getInstance("SHA-256").digest("signed by the Java SDK".getBytes());
            String signature = c.sign(new SignRequest().withBody(new SignRequestBody().withKeyId(ecKey)
                    .withMessage(Base64.getEncoder().encodeToString(digest))
                    .withMessageType(SignRequestBody.MessageTypeEnum.DIGEST)
                    .withSigningAlgorithm(SignRequestBody.SigningAlgorithmEnum.ECDSA_SHA_256))).getSignature();
            java.util.function.Function<byte[], String> verify = message -> c.validateSignature(
                    new ValidateSignatureRequest().withBody(new VerifyRequestBody().withKeyId(ecKey)
                            .withMessage(Base64.getEncoder().encodeToString(message)).withSignature(signature)
                            .withMessageType(VerifyRequestBody.MessageTypeEnum.DIGEST)
                            .withSigningAlgorithm(VerifyRequestBody.SigningAlgorithmEnum.ECDSA_SHA_256)))
                    .getSignatureValid();
            String pem = c.showPublicKey(new ShowPublicKeyRequest().withBody(keyBody(ecKey))).getPublicKey();
            byte[] der = Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", ""));
            Signature local = Signature.getInstance("NONEwithECDSA");
            local.initVerify(KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(der)));
            local.update(digest);
            return Map.of("signature_valid", verify.apply(digest),
                    "tampered_valid", verify.apply(MessageDigest.getInstance("SHA-256").digest("not signed".getBytes())),
                    "local_valid", local.verify(Base64.getDecoder().decode(signature)));
        });
        step("mac", () -> {
            // the SDK's key spec enum has no HMAC names: fromValue makes one
            String hmacKey = c.createKey(new CreateKeyRequest().withBody(new CreateKeyRequestBody()
                    .withKeyAlias(prefix + "-hmac").withKeySpec(CreateKeyRequestBody.KeySpecEnum.fromValue("HMAC_256"))))
                    .getKeyInfo().getKeyId();
            String message = Base64.getEncoder().encodeToString("mac me".getBytes());
            String mac = c.generateMac(new GenerateMacRequest().withBody(new GenerateMacRequestBody().withKeyId(hmacKey)
                    .withMacAlgorithm(GenerateMacRequestBody.MacAlgorithmEnum.HMAC_SHA_256).withMessage(message))).getMac();
            java.util.function.Function<String, Boolean> verify = candidate -> c.verifyMac(new VerifyMacRequest()
                    .withBody(new VerifyMacRequestBody().withKeyId(hmacKey).withMessage(message).withMac(candidate)
                            .withMacAlgorithm(VerifyMacRequestBody.MacAlgorithmEnum.HMAC_SHA_256))).getMacValid();
            return Map.of("mac_valid", verify.apply(mac),
                    "tampered_valid", verify.apply(Base64.getEncoder().encodeToString(new byte[32])),
                    "mac_bytes", Base64.getDecoder().decode(mac).length);
        });

        step("import", () -> {
            String byok = c.createKey(new CreateKeyRequest().withBody(new CreateKeyRequestBody()
                    .withKeyAlias(prefix + "-byok").withOrigin(CreateKeyRequestBody.OriginEnum.EXTERNAL)))
                    .getKeyInfo().getKeyId();
            KeyDetails pending = c.listKeyDetail(new ListKeyDetailRequest().withBody(keyBody(byok))).getKeyInfo();
            CreateParametersForImportResponse params = c.createParametersForImport(
                    new CreateParametersForImportRequest().withBody(new GetParametersForImportRequestBody()
                            .withKeyId(byok)
                            .withWrappingAlgorithm(GetParametersForImportRequestBody.WrappingAlgorithmEnum.RSAES_OAEP_SHA_256)));
            RSAPublicKey wrapping = (RSAPublicKey) KeyFactory.getInstance("RSA").generatePublic(
                    new X509EncodedKeySpec(Base64.getDecoder().decode(params.getPublicKey())));
            byte[] material = new byte[32];
            new SecureRandom().nextBytes(material);
            // RSAES_OAEP_SHA_256: SHA-256 for MGF1 too (Java's OAEPWithSHA-256AndMGF1Padding alone uses SHA-1 there)
            Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPPadding");
            oaep.init(Cipher.ENCRYPT_MODE, wrapping, new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256,
                    PSource.PSpecified.DEFAULT));
            long expires = System.currentTimeMillis() / 1000 + 30L * 86400;
            c.importKeyMaterial(new ImportKeyMaterialRequest().withBody(new ImportKeyMaterialRequestBody().withKeyId(byok)
                    .withImportToken(params.getImportToken())
                    .withEncryptedKeyMaterial(Base64.getEncoder().encodeToString(oaep.doFinal(material)))
                    .withExpirationTime(expires)));
            KeyDetails imported = c.listKeyDetail(new ListKeyDetailRequest().withBody(keyBody(byok))).getKeyInfo();
            String made = c.createDatakey(new CreateDatakeyRequest().withBody(new CreateDatakeyRequestBody().withKeyId(byok)))
                    .getKeyId();
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("pending_state", pending.getKeyState());
            out.put("origin", pending.getOrigin().getValue());
            out.put("public_key_bits", wrapping.getModulus().bitLength());
            out.put("token_expires_in_seconds", params.getExpirationTime() - System.currentTimeMillis() / 1000);
            out.put("state", imported.getKeyState());
            out.put("expiration_matches", imported.getExpirationTime().equals(String.valueOf(expires * 1000)));
            out.put("datakey", made.equals(byok));
            return out;
        });

        step("rsa-datakey-pair", () -> {
            CreateRsaDatakeyPairResponse made = c.createRsaDatakeyPair(new CreateRsaDatakeyPairRequest().withBody(
                    new CreateRsaDatakeyPairRequestBody().withKeyId(keyIds.get(1))
                            .withKeySpec(CreateRsaDatakeyPairRequestBody.KeySpecEnum.RSA_2048)));
            KeyFactory rsa = KeyFactory.getInstance("RSA");
            RSAPrivateCrtKey privateKey = (RSAPrivateCrtKey) rsa.generatePrivate(
                    new PKCS8EncodedKeySpec(Base64.getDecoder().decode(made.getPrivateKeyPlainText())));
            byte[] publicDer = rsa.generatePublic(new RSAPublicKeySpec(privateKey.getModulus(),
                    privateKey.getPublicExponent())).getEncoded();
            String opened = c.decryptData(new DecryptDataRequest().withBody(new DecryptDataRequestBody()
                    .withCipherText(made.getPrivateKeyCipherText()))).getPlainTextBase64();
            return Map.of("key_spec", made.getKeySpec().getValue(), "bits", privateKey.getModulus().bitLength(),
                    "public_matches", Base64.getEncoder().encodeToString(publicDer).equals(made.getPublicKey()),
                    "cipher_opens_to_private", made.getPrivateKeyPlainText().equals(opened));
        });
        step("list-kms-tags", () -> {
            c.createKmsTag(new CreateKmsTagRequest().withKeyId(keyIds.get(1)).withBody(new CreateKmsTagRequestBody()
                    .withTag(new TagItem().withKey("env").withValue("prod"))));
            Map<String, Object> projectTags = new LinkedHashMap<>();
            for (Tag tag : c.listKmsTags(new ListKmsTagsRequest()).getTags()) {
                projectTags.put(tag.getKey(), tag.getValues());
            }
            return Map.of("tags", projectTags);
        });
        step("update-key-alias", () -> {
            KeyAliasInfo renamed = c.updateKeyAlias(new UpdateKeyAliasRequest().withBody(new UpdateKeyAliasRequestBody()
                    .withKeyId(keyIds.get(1)).withKeyAlias(prefix + "-renamed"))).getKeyInfo();
            KeyDetails byNewName = c.listKeyDetail(new ListKeyDetailRequest().withBody(keyBody(prefix + "-renamed")))
                    .getKeyInfo();
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("key_id", renamed.getKeyId());
            out.put("key_alias", renamed.getKeyAlias());
            out.put("described_as", byNewName.getKeyAlias());
            out.put("described_key_id", byNewName.getKeyId());
            return out;
        });
        step("old-alias-after-rename", () -> {
            c.listKeyDetail(new ListKeyDetailRequest().withBody(keyBody(prefix + "-b")));
            return Map.of();
        });
        step("list-key-stores-not-offered", () -> {
            c.listKeyStores(new ListKeyStoresRequest());
            return Map.of();
        });

        step("unknown-key", () -> {
            c.listKeyDetail(new ListKeyDetailRequest().withBody(keyBody("0d0466b0-e727-4d9c-b35d-f84bb474a37f")));
            return Map.of();
        });
        step("wrong-secret-key", () -> {
            client(System.getenv("KMS_ACCESS_KEY"), System.getenv("KMS_SECRET_KEY") + "x").listKeys(
                    new ListKeysRequest().withBody(new ListKeysRequestBody()));
            return Map.of();
        });
        step("unknown-access-key", () -> {
            client("AKUNKNOWN0000000000", System.getenv("KMS_SECRET_KEY")).listKeys(
                    new ListKeysRequest().withBody(new ListKeysRequestBody()));
            return Map.of();
        });
    }
}
