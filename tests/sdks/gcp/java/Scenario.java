// Google's official Java Cloud KMS client (com.google.cloud:google-cloud-kms) against a kubekms server,
// configured as a user would: the endpoint, Application Default Credentials (a service-account key file:
// self-signed JWTs), a second key file's credentials (access tokens from its token_uri, the server's /token)
// and the server's CA (the gRPC channel's or the HTTP transport's trust).
// Prints one JSON line per step; tests/sdks/test_gcp_sdks.py asserts on them.
//
// Environment: KMS_TRANSPORT (grpc | rest), KMS_HOST, KMS_PORT, KMS_CA_FILE, KMS_LOCATION (projects/P/locations/L),
// KMS_RING (a new key ring id), GOOGLE_APPLICATION_CREDENTIALS (may do everything), KMS_READER_CREDENTIALS
// (a key file of a principal that may only read).

import com.google.api.client.http.javanet.NetHttpTransport;
import com.google.api.gax.core.FixedCredentialsProvider;
import com.google.api.gax.grpc.InstantiatingGrpcChannelProvider;
import com.google.api.gax.httpjson.InstantiatingHttpJsonChannelProvider;
import com.google.api.gax.rpc.ApiException;
import com.google.auth.oauth2.GoogleCredentials;
import com.google.cloud.kms.v1.AsymmetricDecryptRequest;
import com.google.cloud.kms.v1.AsymmetricDecryptResponse;
import com.google.cloud.kms.v1.AsymmetricSignRequest;
import com.google.cloud.kms.v1.AsymmetricSignResponse;
import com.google.cloud.kms.v1.CreateCryptoKeyRequest;
import com.google.cloud.kms.v1.CreateKeyRingRequest;
import com.google.cloud.kms.v1.CryptoKey;
import com.google.cloud.kms.v1.CryptoKeyVersion;
import com.google.cloud.kms.v1.CryptoKeyVersionTemplate;
import com.google.cloud.kms.v1.DecryptRequest;
import com.google.cloud.kms.v1.DecryptResponse;
import com.google.cloud.kms.v1.Digest;
import com.google.cloud.kms.v1.EncryptRequest;
import com.google.cloud.kms.v1.EncryptResponse;
import com.google.cloud.kms.v1.KeyManagementServiceClient;
import com.google.cloud.kms.v1.KeyManagementServiceSettings;
import com.google.cloud.kms.v1.KeyRing;
import com.google.cloud.kms.v1.ListCryptoKeyVersionsRequest;
import com.google.cloud.kms.v1.ListCryptoKeysRequest;
import com.google.cloud.kms.v1.MacSignRequest;
import com.google.cloud.kms.v1.MacSignResponse;
import com.google.cloud.kms.v1.MacVerifyRequest;
import com.google.cloud.kms.v1.MacVerifyResponse;
import com.google.cloud.kms.v1.ProtectionLevel;
import com.google.cloud.kms.v1.PublicKey;
import com.google.gson.Gson;
import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import com.google.protobuf.FieldMask;
import com.google.protobuf.Int64Value;
import com.google.protobuf.Timestamp;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.Signature;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;

public class Scenario {
  private static final Gson GSON = new Gson();

  interface Step {
    Map<String, Object> run() throws Exception;
  }

  static long crc(ByteString data) {
    CRC32C crc = new CRC32C();
    crc.update(data.toByteArray());
    return crc.getValue();
  }

  static String tail(String name) {
    return name.substring(name.lastIndexOf('/') + 1);
  }

  static void emit(String step, Map<String, Object> fields) {
    Map<String, Object> line = new LinkedHashMap<>();
    line.put("step", step);
    line.put("code", "OK");
    line.putAll(fields);
    System.out.println(GSON.toJson(line));
  }

  /** The step's fields, or the error's status code and message (an ApiException: the client's typed error). */
  static void attempt(String step, Step call) throws Exception {
    try {
      emit(step, call.run());
    } catch (ApiException error) {
      Map<String, Object> line = new LinkedHashMap<>();
      line.put("step", step);
      line.put("code", error.getStatusCode().getCode().name());
      // over REST the message is the HTTP reason; the server's message is in the cause (the response body)
      Throwable cause = error.getCause();
      line.put("message", error.getMessage() + (cause == null ? "" : " | " + cause.getMessage()));
      line.put("exception", error.getClass().getSimpleName());
      System.out.println(GSON.toJson(line));
    }
  }

  static KeyManagementServiceClient newClient(String keyFile) throws Exception {
    String endpoint = System.getenv("KMS_HOST") + ":" + System.getenv("KMS_PORT");
    File ca = new File(System.getenv("KMS_CA_FILE"));
    NetHttpTransport transport; // HTTPS trusting the server's CA: the REST calls', and the token requests'
    try (InputStream pem = new FileInputStream(ca)) {
      transport = new NetHttpTransport.Builder().trustCertificatesFromStream(pem).build();
    }
    KeyManagementServiceSettings.Builder settings;
    if ("rest".equals(System.getenv("KMS_TRANSPORT"))) {
      settings = KeyManagementServiceSettings.newHttpJsonBuilder()
          .setTransportChannelProvider(InstantiatingHttpJsonChannelProvider.newBuilder()
              .setEndpoint("https://" + endpoint).setHttpTransport(transport).build());
    } else {
      settings = KeyManagementServiceSettings.newBuilder()
          .setTransportChannelProvider(InstantiatingGrpcChannelProvider.newBuilder()
              .setEndpoint(endpoint)
              .setChannelConfigurator(builder -> {
                try {
                  return ((NettyChannelBuilder) builder).sslContext(GrpcSslContexts.forClient().trustManager(ca).build());
                } catch (javax.net.ssl.SSLException error) {
                  throw new IllegalStateException(error);
                }
              })
              .build());
    }
    settings.setEndpoint(endpoint);
    if (keyFile != null) { // else Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS)
      try (InputStream in = new FileInputStream(keyFile)) {
        // credentials of a key file as such: access tokens from its token_uri (the server's /token), whereas the
        // default provider (ADC) makes self-signed JWTs
        settings.setCredentialsProvider(FixedCredentialsProvider.create(
            GoogleCredentials.fromStream(in, () -> transport).createScoped("https://www.googleapis.com/auth/cloudkms")));
      }
    }
    return KeyManagementServiceClient.create(settings.build());
  }

  public static void main(String[] args) throws Exception {
    String location = System.getenv("KMS_LOCATION");
    try (KeyManagementServiceClient client = newClient(null)) {
      KeyRing ring = client.createKeyRing(CreateKeyRingRequest.newBuilder().setParent(location)
          .setKeyRingId(System.getenv("KMS_RING")).setKeyRing(KeyRing.getDefaultInstance()).build());
      emit("CreateKeyRing", Map.of("name", ring.getName(), "create_time", ring.getCreateTime().getSeconds()));

      CryptoKey key = client.createCryptoKey(CreateCryptoKeyRequest.newBuilder().setParent(ring.getName())
          .setCryptoKeyId("sym").setCryptoKey(CryptoKey.newBuilder()
              .setPurpose(CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT)
              .setVersionTemplate(CryptoKeyVersionTemplate.newBuilder()
                  .setAlgorithm(CryptoKeyVersion.CryptoKeyVersionAlgorithm.GOOGLE_SYMMETRIC_ENCRYPTION))
              .putLabels("team", "payments")).build());
      emit("CreateCryptoKey", Map.of("name", key.getName(), "purpose", key.getPurpose().name(),
          "primary", key.getPrimary().getName(), "state", key.getPrimary().getState().name(),
          "labels", key.getLabelsMap(), "destroy_days", key.getDestroyScheduledDuration().getSeconds() / 86400.0));
      CryptoKey signKey = client.createCryptoKey(ring.getName(), "sign", CryptoKey.newBuilder()
          .setPurpose(CryptoKey.CryptoKeyPurpose.ASYMMETRIC_SIGN)
          .setVersionTemplate(CryptoKeyVersionTemplate.newBuilder()
              .setAlgorithm(CryptoKeyVersion.CryptoKeyVersionAlgorithm.EC_SIGN_P256_SHA256)).build());
      emit("CreateCryptoKey.sign", Map.of("purpose", signKey.getPurpose().name()));
      CryptoKey macKey = client.createCryptoKey(ring.getName(), "mac", CryptoKey.newBuilder()
          .setPurpose(CryptoKey.CryptoKeyPurpose.MAC)
          .setVersionTemplate(CryptoKeyVersionTemplate.newBuilder()
              .setAlgorithm(CryptoKeyVersion.CryptoKeyVersionAlgorithm.HMAC_SHA256)).build());
      emit("CreateCryptoKey.mac", Map.of("purpose", macKey.getPurpose().name()));
      String version1 = key.getName() + "/cryptoKeyVersions/1";

      // as Google's Java sample does: sign a SHA-256 digest, verify it with the public key's PEM
      ByteString message = ByteString.copyFromUtf8("pay 100 to alice");
      ByteString digest = ByteString.copyFrom(MessageDigest.getInstance("SHA-256").digest(message.toByteArray()));
      String signVersion = signKey.getName() + "/cryptoKeyVersions/1";
      PublicKey publicKey = client.getPublicKey(signVersion);
      emit("GetPublicKey", Map.of("algorithm", publicKey.getAlgorithm().name(),
          "pem_crc32c_ok", publicKey.getPemCrc32C().getValue() == crc(ByteString.copyFromUtf8(publicKey.getPem()))));
      attempt("AsymmetricSign", () -> {
        AsymmetricSignResponse signed = client.asymmetricSign(AsymmetricSignRequest.newBuilder().setName(signVersion)
            .setDigest(Digest.newBuilder().setSha256(digest)).setDigestCrc32C(Int64Value.of(crc(digest))).build());
        String base64 = publicKey.getPem().replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
        Signature verifier = Signature.getInstance("SHA256withECDSA");
        verifier.initVerify(KeyFactory.getInstance("EC")
            .generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(base64))));
        verifier.update(message.toByteArray());
        return Map.of("verified", verifier.verify(signed.getSignature().toByteArray()),
            "verified_digest_crc32c", signed.getVerifiedDigestCrc32C(),
            "signature_crc32c_ok", signed.getSignatureCrc32C().getValue() == crc(signed.getSignature()));
      });
      // as Google's Java sample does: encrypt locally with the public key (OAEP SHA-256, MGF1 SHA-256)
      CryptoKey decryptKey = client.createCryptoKey(ring.getName(), "decrypt", CryptoKey.newBuilder()
          .setPurpose(CryptoKey.CryptoKeyPurpose.ASYMMETRIC_DECRYPT)
          .setVersionTemplate(CryptoKeyVersionTemplate.newBuilder()
              .setAlgorithm(CryptoKeyVersion.CryptoKeyVersionAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256)).build());
      String decryptVersion = decryptKey.getName() + "/cryptoKeyVersions/1";
      String decryptPem = client.getPublicKey(decryptVersion).getPem();
      Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPWithSHA-256AndMGF1Padding");
      oaep.init(Cipher.ENCRYPT_MODE, KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(
          Base64.getDecoder().decode(decryptPem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "")))),
          new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT));
      ByteString oaepSealed = ByteString.copyFrom(oaep.doFinal(message.toByteArray()));
      attempt("AsymmetricDecrypt", () -> {
        AsymmetricDecryptResponse opened = client.asymmetricDecrypt(AsymmetricDecryptRequest.newBuilder()
            .setName(decryptVersion).setCiphertext(oaepSealed).setCiphertextCrc32C(Int64Value.of(crc(oaepSealed))).build());
        return Map.of("plaintext", opened.getPlaintext().toStringUtf8(),
            "verified_ciphertext_crc32c", opened.getVerifiedCiphertextCrc32C(),
            "plaintext_crc32c_ok", opened.getPlaintextCrc32C().getValue() == crc(opened.getPlaintext()));
      });

      String macVersion = macKey.getName() + "/cryptoKeyVersions/1";
      MacSignResponse tag = client.macSign(MacSignRequest.newBuilder().setName(macVersion).setData(message)
          .setDataCrc32C(Int64Value.of(crc(message))).build());
      emit("MacSign", Map.of("length", tag.getMac().size(), "verified_data_crc32c", tag.getVerifiedDataCrc32C(),
          "mac_crc32c_ok", tag.getMacCrc32C().getValue() == crc(tag.getMac())));
      attempt("MacVerify", () -> {
        MacVerifyResponse checked = client.macVerify(MacVerifyRequest.newBuilder().setName(macVersion).setData(message)
            .setMac(tag.getMac()).setMacCrc32C(Int64Value.of(crc(tag.getMac()))).build());
        MacVerifyResponse tampered = client.macVerify(MacVerifyRequest.newBuilder().setName(macVersion)
            .setData(message.concat(ByteString.copyFromUtf8("!"))).setMac(tag.getMac()).build());
        return Map.of("success", checked.getSuccess(), "verified_mac_crc32c", checked.getVerifiedMacCrc32C(),
            "tampered_success", tampered.getSuccess());
      });

      attempt("GetCryptoKey", () -> {
        CryptoKey got = client.getCryptoKey(key.getName());
        return Map.of("name", got.getName(), "primary", got.getPrimary().getName(),
            "algorithm", got.getPrimary().getAlgorithm().name(),
            "protection_level", got.getPrimary().getProtectionLevel().name());
      });

      for (int i = 0; i < 4; i++) {
        client.createCryptoKey(ring.getName(), "more-" + i,
            CryptoKey.newBuilder().setPurpose(CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT).build());
      }
      ListCryptoKeysRequest listRequest = ListCryptoKeysRequest.newBuilder().setParent(ring.getName()).setPageSize(2).build();
      List<String> listed = new ArrayList<>();
      for (CryptoKey item : client.listCryptoKeys(listRequest).iterateAll()) {
        listed.add(tail(item.getName()));
      }
      int pages = 0;
      long totalSize = -1;
      for (KeyManagementServiceClient.ListCryptoKeysPage page : client.listCryptoKeys(listRequest).iteratePages()) {
        pages++;
        totalSize = page.getResponse().getTotalSize();
      }
      emit("ListCryptoKeys", Map.of("names", listed, "total_size", totalSize, "pages", pages));

      ByteString plaintext = ByteString.copyFromUtf8("attack at dawn");
      ByteString aad = ByteString.copyFromUtf8("order=42");
      EncryptResponse encrypted = client.encrypt(EncryptRequest.newBuilder().setName(key.getName())
          .setPlaintext(plaintext).setAdditionalAuthenticatedData(aad)
          .setPlaintextCrc32C(Int64Value.of(crc(plaintext)))
          .setAdditionalAuthenticatedDataCrc32C(Int64Value.of(crc(aad))).build());
      emit("Encrypt", Map.of("name", encrypted.getName(),
          "verified_plaintext_crc32c", encrypted.getVerifiedPlaintextCrc32C(),
          "verified_aad_crc32c", encrypted.getVerifiedAdditionalAuthenticatedDataCrc32C(),
          "ciphertext_crc32c_ok", encrypted.getCiphertextCrc32C().getValue() == crc(encrypted.getCiphertext()),
          "protection_level", encrypted.getProtectionLevel().name()));
      ByteString ciphertext = encrypted.getCiphertext();
      attempt("Decrypt", () -> {
        DecryptResponse decrypted = client.decrypt(DecryptRequest.newBuilder().setName(key.getName())
            .setCiphertext(ciphertext).setAdditionalAuthenticatedData(aad)
            .setCiphertextCrc32C(Int64Value.of(crc(ciphertext)))
            .setAdditionalAuthenticatedDataCrc32C(Int64Value.of(crc(aad))).build());
        return Map.of("plaintext", decrypted.getPlaintext().toStringUtf8(), "used_primary", decrypted.getUsedPrimary(),
            "plaintext_crc32c_ok", decrypted.getPlaintextCrc32C().getValue() == crc(decrypted.getPlaintext()));
      });
      attempt("Decrypt.wrong_aad", () -> Map.of("plaintext", client.decrypt(DecryptRequest.newBuilder()
          .setName(key.getName()).setCiphertext(ciphertext)
          .setAdditionalAuthenticatedData(ByteString.copyFromUtf8("order=43")).build()).getPlaintext().size()));
      attempt("Encrypt.bad_crc32c", () -> Map.of("name", client.encrypt(EncryptRequest.newBuilder()
          .setName(key.getName()).setPlaintext(plaintext)
          .setPlaintextCrc32C(Int64Value.of(crc(plaintext) ^ 1)).build()).getName()));
      ByteString large = ByteString.copyFrom(new byte[4096]);
      attempt("Encrypt.large", () -> {
        ByteString sealed = client.encrypt(key.getName(), large).getCiphertext();
        return Map.of("round_trip", client.decrypt(key.getName(), sealed).getPlaintext().equals(large));
      });

      attempt("CreateCryptoKeyVersion", () -> {
        CryptoKeyVersion version = client.createCryptoKeyVersion(key.getName(), CryptoKeyVersion.getDefaultInstance());
        return Map.of("name", version.getName(), "state", version.getState().name());
      });
      attempt("UpdateCryptoKeyPrimaryVersion", () -> Map.of("primary",
          client.updateCryptoKeyPrimaryVersion(key.getName(), "2").getPrimary().getName()));

      long next = System.currentTimeMillis() / 1000 + 48 * 3600;
      CryptoKey update = CryptoKey.newBuilder().setName(key.getName()).putLabels("team", "risk").putLabels("env", "prod")
          .setRotationPeriod(Duration.newBuilder().setSeconds(30 * 86400))
          .setNextRotationTime(Timestamp.newBuilder().setSeconds(next)).build();
      attempt("UpdateCryptoKey", () -> {
        CryptoKey updated = client.updateCryptoKey(update, FieldMask.newBuilder()
            .addPaths("labels").addPaths("rotation_period").addPaths("next_rotation_time").build());
        return Map.of("labels", updated.getLabelsMap(), "rotation_period_s", updated.getRotationPeriod().getSeconds(),
            "next_rotation_time", updated.getNextRotationTime().getSeconds(), "expected_next", next);
      });
      attempt("UpdateCryptoKey.bad_mask", () -> Map.of("name",
          client.updateCryptoKey(update, FieldMask.newBuilder().addPaths("purpose").build()).getName()));

      attempt("UpdateCryptoKeyVersion", () -> Map.of("state", client.updateCryptoKeyVersion(
          CryptoKeyVersion.newBuilder().setName(version1).setState(CryptoKeyVersion.CryptoKeyVersionState.DISABLED).build(),
          FieldMask.newBuilder().addPaths("state").build()).getState().name()));
      attempt("Decrypt.disabled", () -> Map.of("plaintext", client.decrypt(DecryptRequest.newBuilder()
          .setName(key.getName()).setCiphertext(ciphertext).setAdditionalAuthenticatedData(aad).build())
          .getPlaintext().size()));
      attempt("DestroyCryptoKeyVersion", () -> {
        CryptoKeyVersion destroyed = client.destroyCryptoKeyVersion(version1);
        return Map.of("state", destroyed.getState().name(),
            "destroy_in_days", (destroyed.getDestroyTime().getSeconds() - System.currentTimeMillis() / 1000.0) / 86400);
      });
      attempt("RestoreCryptoKeyVersion", () -> Map.of("state",
          client.restoreCryptoKeyVersion(version1).getState().name()));
      List<String> versions = new ArrayList<>();
      for (CryptoKeyVersion item : client.listCryptoKeyVersions(ListCryptoKeyVersionsRequest.newBuilder()
          .setParent(key.getName()).setPageSize(1).build()).iterateAll()) {
        versions.add(tail(item.getName()) + "=" + item.getState().name());
      }
      emit("ListCryptoKeyVersions", Map.of("versions", versions));

      attempt("GenerateRandomBytes", () -> {
        var random = client.generateRandomBytes(location, 32, ProtectionLevel.HSM);
        return Map.of("length", random.getData().size(),
            "crc32c_ok", random.getDataCrc32C().getValue() == crc(random.getData()));
      });
      attempt("GetCryptoKey.absent", () -> Map.of("name",
          client.getCryptoKey(ring.getName() + "/cryptoKeys/absent").getName()));
      attempt("CreateCryptoKey.bad_id", () -> Map.of("name", client.createCryptoKey(ring.getName(), "not valid!",
          CryptoKey.newBuilder().setPurpose(CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT).build()).getName()));

      try (KeyManagementServiceClient reader = newClient(System.getenv("KMS_READER_CREDENTIALS"))) {
        attempt("reader.GetCryptoKey", () -> Map.of("name", reader.getCryptoKey(key.getName()).getName()));
        attempt("reader.Encrypt", () -> Map.of("name", reader.encrypt(key.getName(), plaintext).getName()));
      }
    }
  }
}
